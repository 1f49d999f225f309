// One real WebGPU device per test file (Dawn in Node; SwiftShader here, a GPU where there is one).
// Call at the top level of a test file: `const ctx = await useGpu();`

import { afterAll } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { createNodeF16GpuContext, createNodeGpuContext } from '../../src/node/gpu';

export async function useGpu(): Promise<GpuContext> {
  const context = await createNodeGpuContext();
  afterAll(() => context.destroy());
  return context;
}

/**
 * A device with shader-f16 for the 'f16' precision's tests, or why there is none (SwiftShader lacks it;
 * `npm test` fetches Mesa's lavapipe, which has it, on Debian): describe.skipIf on a string.
 */
export async function useF16Gpu(): Promise<GpuContext | string> {
  const context = await createNodeF16GpuContext();
  if (typeof context !== 'string') afterAll(() => context.destroy());
  return context;
}
