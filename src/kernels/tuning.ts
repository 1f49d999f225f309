// Per-adapter kernel choices. CPU implementations of WebGPU (SwiftShader, Mesa's lavapipe) run a
// workgroup's threads as fibers on a few cores, so workgroup barriers are very costly there, while GPUs
// want wide workgroups to hide memory latency. Kernels with in-workgroup reductions take their width
// from here; each caller records what it measured.

import type { GpuContext } from '../gpu/context';

/** CPU implementations of Vulkan or WebGPU by adapter name: SwiftShader, Mesa's llvmpipe (lavapipe), WARP. */
const CPU_ADAPTER_NAME = /swiftshader|llvmpipe|lavapipe|software|warp/i;

export function isCpuAdapterName(adapterName: string): boolean {
  return CPU_ADAPTER_NAME.test(adapterName);
}

export function isCpuAdapter(ctx: GpuContext): boolean {
  return isCpuAdapterName(ctx.adapterName);
}
