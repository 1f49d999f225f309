#!/usr/bin/env node
// Runs the octoclip CLI (src/cli), built into one Node module from the current sources (scripts/setup.mjs
// builds it again when they change), in the WebGPU environment scripts/setup.mjs sets up.
import { ensureCliBuild, runWithWebgpu } from '../scripts/setup.mjs';

const cli = await ensureCliBuild();
process.exit(runWithWebgpu(process.execPath, [cli, ...process.argv.slice(2)], { cwd: process.cwd() }));
