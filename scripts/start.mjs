#!/usr/bin/env node
// npm start: the octoclip studio at http://127.0.0.1:5173/ (the Vite dev server). Starting it needs
// only Node.js and the npm packages; the GPU work runs in the browser that opens the page.
import { ensureNode, ensureNpmDependencies, ROOT, runStages, runWithWebgpu } from './setup.mjs';

const URL = 'http://127.0.0.1:5173/';

const failed = runStages([
  { title: 'Node.js', run: ensureNode },
  { title: 'npm dependencies', run: ensureNpmDependencies },
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
process.exit(runWithWebgpu('vite', ['--host', '127.0.0.1', '--port', '5173', '--strictPort'], { cwd: ROOT }));
