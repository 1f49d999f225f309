#!/usr/bin/env node
// npm start: the built octoclip studio at http://127.0.0.1:5173/, as a static host would serve it (so it
// also works offline after one visit). It builds dist/ only when the sources changed since the last
// build; `npm run dev` is the Vite dev server for working on the studio. Starting it needs only Node.js
// and the npm packages; the GPU work runs in the browser that opens the page.
import {
  ensureNode,
  ensureNpmDependencies,
  ensureStudioBuild,
  ROOT,
  runStages,
  runWithWebgpu,
  STUDIO_DIST,
} from './setup.mjs';

const PORT = 5173;
const URL = `http://127.0.0.1:${PORT}/`;

const failed = runStages([
  { title: 'Node.js', run: ensureNode },
  { title: 'npm dependencies', run: ensureNpmDependencies },
  { title: 'Studio build', run: ensureStudioBuild },
]);
if (failed) {
  console.error(`\nnpm start FAILED in "${failed.title}": ${failed.reason}`);
  process.exit(1);
}
console.log(`
==== octoclip studio ====
Open ${URL} in a browser with WebGPU: Chrome or Edge 113+ (on Linux, start Chrome with
--enable-unsafe-webgpu or turn on chrome://flags/#enable-unsafe-webgpu), Firefox 141+ or Safari 26+.
Training runs on that computer's GPU. Stop the server with Ctrl+C.
`);
process.exit(
  runWithWebgpu(
    'vite',
    ['preview', '--outDir', STUDIO_DIST, '--host', '127.0.0.1', '--port', String(PORT), '--strictPort'],
    {
      cwd: ROOT,
    },
  ),
);
