#!/usr/bin/env node
// npm test: from a fresh clone, installs what is missing and runs every check, each under its own
// header with its time, stopping at the first failure with a non-zero exit status.
import {
  ensureF16VulkanDriver,
  ensureNode,
  ensureNpmDependencies,
  ensureTestSystemPackages,
  ROOT,
  runStages,
  runWithWebgpu,
  spawn,
} from './setup.mjs';

/** @param {string} tool @param {string[]} args */
const check = (tool, args) => () => runWithWebgpu(tool, args, { cwd: ROOT });

/** Every check npm test runs, in order. @type {import('./setup.mjs').Stage[]} */
const STAGES = [
  { title: 'Node.js', run: ensureNode },
  { title: 'System packages', run: ensureTestSystemPackages },
  // Mesa's lavapipe, where the 'f16' precision's kernels run without a GPU (skipped where it cannot be had).
  { title: 'Vulkan driver with shader-f16', run: ensureF16VulkanDriver },
  { title: 'npm dependencies', run: ensureNpmDependencies },
  { title: 'Type check', run: check('tsc', ['--noEmit']) },
  // The engine and src/common against a worker's globals, without the DOM.
  { title: 'Engine type check', run: check('tsc', ['--noEmit', '-p', 'tsconfig.engine.json']) },
  // Biome: lint rules and the formatter's layout (`npm run format` applies it).
  { title: 'Lint and format', run: check('biome', ['check', '.']) },
  // dependency-cruiser: the layers of docs/architecture.md and no import cycle.
  { title: 'Layers', run: check('depcruise', ['src', '--output-type', 'err']) },
  // README.md, CHANGELOG.md and docs/: no paragraph twice, README.md within one screen, no broken relative link.
  { title: 'Docs', run: () => spawn(process.execPath, ['scripts/check-docs.mjs'], { cwd: ROOT }) },
  // WebGPU in Node through Dawn.
  { title: 'Unit tests', run: check('vitest', ['run']) },
  // The built studio in headless Chromium.
  { title: 'End-to-end tests', run: check('playwright', ['test']) },
];

const started = Date.now();
const failed = runStages(STAGES);
if (failed) {
  console.error(`\nnpm test FAILED in "${failed.title}": ${failed.reason}`);
  process.exit(1);
}
console.log(`\n==== All checks passed in ${Math.round((Date.now() - started) / 1000)} s ====`);
