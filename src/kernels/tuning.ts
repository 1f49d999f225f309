// Per-adapter kernel choices. SwiftShader (WebGPU on the CPU) runs a workgroup's threads as fibers on
// a few cores, so workgroup barriers are very costly there, while GPUs want wide workgroups to hide
// memory latency. Kernels with in-workgroup reductions take their width from here; each caller
// records what it measured.

import type { GpuContext } from '../gpu/context';

export function isCpuAdapter(ctx: GpuContext): boolean {
  return ctx.adapterName.includes('swiftshader');
}
