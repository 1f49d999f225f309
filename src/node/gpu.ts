// WebGPU in Node through the `webgpu` package (Dawn). Dawn needs a Vulkan driver: a real GPU's when
// there is one, else Chromium's SwiftShader (a CPU Vulkan) from Debian's chromium package.

import { existsSync } from 'node:fs';
import { openDevice } from '../gpu/device';
import { GpuContext } from '../gpu/context';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

// Dawn tears down every device of a GPU instance when the instance is garbage-collected: hold them.
const liveInstances = new Set<GPU>();

export async function createNodeGpuContext(): Promise<GpuContext> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const webgpu = await import('webgpu');
  // Engine code uses the WebGPU globals (GPUBufferUsage, GPUMapMode, ...) as in a browser.
  Object.assign(globalThis, webgpu.globals);
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
  liveInstances.add(gpu);
  const { device, adapterName } = await openDevice(adapter);
  void device.lost.then(() => liveInstances.delete(gpu));
  return new GpuContext(device, { adapterName });
}
