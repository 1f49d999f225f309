import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { defineConfig, type Plugin } from 'vitest/config';
import react from '@vitejs/plugin-react';

/** The service worker's source; the build writes it as sw.js beside index.html. */
const SERVICE_WORKER = 'src/service-worker.js';

/** Every file under `dir`, as paths relative to it with forward slashes. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'));
}

/**
 * Writes sw.js into the finished build: the service worker, after a line naming every file of the
 * build (relative to sw.js, so the site works under any path) and a version made of their contents.
 */
function serviceWorker(): Plugin {
  let outDir = '';
  let source = '';
  return {
    name: 'octoclip-service-worker',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
      source = resolve(config.root, SERVICE_WORKER);
    },
    closeBundle() {
      const files = filesUnder(outDir)
        .filter((file) => file !== 'sw.js')
        .sort();
      const hash = createHash('sha256');
      for (const file of files) hash.update(file).update(readFileSync(join(outDir, file)));
      const build = { files, version: hash.digest('hex').slice(0, 16) };
      writeFileSync(
        join(outDir, 'sw.js'),
        `self.OCTOCLIP_BUILD = ${JSON.stringify(build)};\n${readFileSync(source, 'utf8')}`,
      );
    },
  };
}

export default defineConfig({
  // Relative URLs: the built site works from any static host, under any path.
  base: './',
  plugins: [react(), serviceWorker()],
  worker: { format: 'es' },
  server: { host: '127.0.0.1', port: 5173 },
  // The dev server scans only the studio's page for dependencies: examples/ is its own Vite project
  // (examples/vite.config.ts resolves its `octoclip` import), which this one's scan cannot resolve.
  optimizeDeps: { entries: ['index.html'] },
  preview: { host: '127.0.0.1', port: 4173 },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // Each test file opens its own Dawn device; SwiftShader already uses every core.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
