#!/usr/bin/env node
// node scripts/with-webgpu.mjs COMMAND [ARGS...]: runs a command with what WebGPU needs in Node (the
// Vulkan driver on Linux, XDG_RUNTIME_DIR) and the project's tools on the PATH. See setup.mjs.
import { runWithWebgpu } from './setup.mjs';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('Usage: node scripts/with-webgpu.mjs COMMAND [ARGS...]   (e.g. vitest run test/kernels)');
  process.exit(2);
}
process.exit(runWithWebgpu(command, args));
