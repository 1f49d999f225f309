#!/usr/bin/env node
// Runs the octoclip CLI (src/cli) through vite-node, which bundles the WGSL shaders as Vite does for
// the studio, in the WebGPU environment scripts/setup.mjs sets up.
import { join } from 'node:path';
import { ROOT, runWithWebgpu } from '../scripts/setup.mjs';

process.exit(
  runWithWebgpu('vite-node', ['--root', ROOT, join(ROOT, 'src/cli/index.ts'), '--', ...process.argv.slice(2)], {
    cwd: process.cwd(),
  }),
);
