// One real WebGPU device per test file (Dawn in Node; SwiftShader here, a GPU where there is one).
// Call at the top level of a test file: `const ctx = await useGpu();`

import { afterAll } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { createNodeGpuContext } from '../../src/node/gpu';

export async function useGpu(): Promise<GpuContext> {
  const context = await createNodeGpuContext();
  afterAll(() => context.destroy());
  return context;
}
