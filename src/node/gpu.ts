// WebGPU in Node through the `webgpu` package (Dawn). Dawn needs a Vulkan driver: a real GPU's when
// there is one, else Chromium's SwiftShader (a CPU Vulkan) from Debian's chromium package.

import { existsSync } from 'node:fs';
import { openDevice } from '../gpu/device';
import { GpuContext } from '../gpu/context';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * A Vulkan driver that offers shader-f16 on a machine whose own does not (Mesa's lavapipe, a CPU
 * Vulkan; `npm test` fetches it on Debian, scripts/setup.mjs): where the 'f16' precision's kernels are
 * tested without a GPU.
 */
export const F16_VULKAN_ICD_VARIABLE = 'OCTOCLIP_F16_VULKAN_ICD';

// Dawn tears down every device of a GPU instance when the instance is garbage-collected: hold them,
// for the life of the process. Finalizing an instance whose devices were destroyed could still abort
// the process when two Vulkan drivers were loaded (SwiftShader's and lavapipe's: "terminate called
// after throwing std::system_error", in 2 of 26 runs of two test files here, none in 30 since); an
// instance costs little beside its destroyed devices.
const liveInstances = new Set<GPU>();

type Webgpu = typeof import('webgpu');

async function loadWebgpu(): Promise<Webgpu> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const webgpu = await import('webgpu');
  // Engine code uses the WebGPU globals (GPUBufferUsage, GPUMapMode, ...) as in a browser.
  Object.assign(globalThis, webgpu.globals);
  return webgpu;
}

/** An adapter of a Dawn instance made while VK_ICD_FILENAMES names `icd` (the loader reads it then). */
async function adapterWithIcd(webgpu: Webgpu, icd: string): Promise<{ gpu: GPU; adapter: GPUAdapter | null }> {
  const before = process.env.VK_ICD_FILENAMES;
  process.env.VK_ICD_FILENAMES = icd;
  try {
    const gpu = webgpu.create([]);
    return { gpu, adapter: await gpu.requestAdapter() };
  } finally {
    if (before === undefined) delete process.env.VK_ICD_FILENAMES;
    else process.env.VK_ICD_FILENAMES = before;
  }
}

async function contextOn(gpu: GPU, adapter: GPUAdapter): Promise<GpuContext> {
  liveInstances.add(gpu);
  const { device, adapterName } = await openDevice(adapter);
  return new GpuContext(device, { adapterName });
}

export async function createNodeGpuContext(): Promise<GpuContext> {
  const webgpu = await loadWebgpu();
  let gpu = webgpu.create([]);
  let adapter = await gpu.requestAdapter();
  if (!adapter && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    gpu = webgpu.create([]);
    adapter = await gpu.requestAdapter();
  }
  if (!adapter) {
    throw new Error(
      'No WebGPU adapter in Node. Install a Vulkan driver and loader: on Debian `apt-get install -y libvulkan1 chromium` ' +
        `(SwiftShader, found at ${SWIFTSHADER_ICD}), or your GPU vendor's Vulkan driver; ` +
        'VK_ICD_FILENAMES picks a driver explicitly.',
    );
  }
  return contextOn(gpu, adapter);
}

/**
 * A context whose device multiplies in half precision (shader-f16): the default adapter's if it offers
 * the feature, else the driver named by OCTOCLIP_F16_VULKAN_ICD's; a string saying why not otherwise.
 */
export async function createNodeF16GpuContext(): Promise<GpuContext | string> {
  const webgpu = await loadWebgpu();
  const gpu = webgpu.create([]);
  liveInstances.add(gpu); // held even when its adapter is not used, as every instance is (above)
  const adapter = await gpu.requestAdapter();
  if (adapter?.features.has('shader-f16')) return contextOn(gpu, adapter);
  const lacking = `the default adapter (${adapter ? adapter.info.description || adapter.info.vendor : 'none'}) lacks shader-f16`;
  const icd = process.env[F16_VULKAN_ICD_VARIABLE];
  if (!icd) return `${lacking}, and ${F16_VULKAN_ICD_VARIABLE} names no driver that has it`;
  const other = await adapterWithIcd(webgpu, icd);
  if (!other.adapter?.features.has('shader-f16')) return `${lacking}, and so does the driver at ${icd}`;
  return contextOn(other.gpu, other.adapter);
}
