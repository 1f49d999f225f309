#!/usr/bin/env node
// Runs the octoclip CLI (src/cli) through vite-node, which bundles the WGSL shaders as Vite does for
// the studio. Sets up WebGPU's Vulkan driver the way scripts/with-webgpu.sh does.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const result = spawnSync('bash', [join(root, 'scripts/with-webgpu.sh'), 'vite-node', '--root', root, join(root, 'src/cli/index.ts'), '--', ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: process.cwd(),
});
process.exit(result.status ?? 1);
