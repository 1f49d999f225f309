// The library build (`npm run build:api`): the Node and browser entry points of src/api as ES modules in dist/,
// with the WGSL shaders inlined; the package's dependencies stay imports. Types come from tsconfig.api.json.
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    outDir: 'dist/api',
    emptyOutDir: true,
    target: 'es2022',
    minify: false,
    sourcemap: true,
    lib: { entry: { node: 'src/api/node.ts', browser: 'src/api/browser.ts' }, formats: ['es'] },
    rollupOptions: { external: [/^node:/, 'webgpu', 'sharp', 'idb'] },
  },
});
