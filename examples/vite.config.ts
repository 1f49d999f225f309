// Serves the examples (`npx vite --config examples/vite.config.ts`, then /classify/), with the `octoclip`
// package resolved to this checkout's browser entry point.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  resolve: { alias: { octoclip: fileURLToPath(new URL('../src/api/browser.ts', import.meta.url)) } },
  server: { host: '127.0.0.1', fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
});
