// Acquire a GPUDevice with the limits the engine needs, and say plainly why when we cannot.

export class WebGpuUnavailableError extends Error {
  override name = 'WebGpuUnavailableError';
}

/** Limits below these make CLIP training impractical (ViT-B attention and MLP activations). */
export const REQUIRED_LIMITS = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
} as const;

export interface AcquiredDevice {
  device: GPUDevice;
  adapterName: string;
  hasTimestampQuery: boolean;
  /** The browser's software fallback (GPUAdapterInfo.isFallbackAdapter, where the browser reports it). */
  isFallbackAdapter: boolean;
}

/** A short, human-readable adapter name such as "google / swiftshader" or "nvidia / hopper". */
export function describeAdapter(info: GPUAdapterInfo | undefined): string {
  return nameOf(info && [info.vendor, info.architecture || info.device || info.description]);
}

/**
 * Everything WebGPU says about an adapter, driver included, such as "google / swiftshader /
 * swiftshader-device-subzero- / SwiftShader driver 5.0.0": what a measurement on it holds for.
 */
export function adapterIdentity(info: GPUAdapterInfo | undefined): string {
  return nameOf(info && [info.vendor, info.architecture, info.device, info.description]);
}

/** The parts WebGPU filled in, joined; 'unknown adapter' when there are none. */
function nameOf(parts: readonly string[] | undefined): string {
  const given = parts?.filter(Boolean) ?? [];
  return given.length ? given.join(' / ') : 'unknown adapter';
}

export async function acquireDevice(
  gpu: GPU | undefined,
  options: { powerPreference?: GPUPowerPreference } = {},
): Promise<AcquiredDevice> {
  if (!gpu) {
    throw new WebGpuUnavailableError(
      'WebGPU is not available in this browser. Use a recent Chrome or Edge (113+), or Firefox 141+ / Safari 26+, ' +
        'on a page served over https or localhost. On Linux, Chrome needs --enable-unsafe-webgpu (and Vulkan drivers).',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'WebGPU is present but no GPU adapter was offered. Update your graphics driver, or enable WebGPU in the browser ' +
        '(chrome://flags/#enable-unsafe-webgpu on Linux), then reload.',
    );
  }
  return openDevice(adapter);
}

/** Opens a device on adapter with the engine's limits, or explains which limit falls short. */
export async function openDevice(adapter: GPUAdapter): Promise<AcquiredDevice> {
  const shortfalls = Object.entries(REQUIRED_LIMITS)
    .filter(([name, min]) => (adapter.limits[name as keyof GPUSupportedLimits] as number) < min)
    .map(([name, min]) => `${name}: need ${min}, adapter offers ${adapter.limits[name as keyof GPUSupportedLimits]}`);
  if (shortfalls.length) {
    throw new WebGpuUnavailableError(`This GPU adapter is too limited for octoclip (${shortfalls.join('; ')}).`);
  }
  // Ask for everything the adapter can give on the limits that bound tensor sizes: browsers default
  // to 128 MiB bindings and 16 KiB workgroup storage unless asked.
  const requiredLimits: Record<string, number> = {
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxStorageBuffersPerShaderStage: Math.min(adapter.limits.maxStorageBuffersPerShaderStage, 10),
    maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: adapter.limits.maxComputeWorkgroupSizeY,
  };
  const hasTimestampQuery = adapter.features.has('timestamp-query');
  // shader-f16: the 'f16' precision's half-precision products (GpuContext.hasF16Arithmetic).
  const wanted: GPUFeatureName[] = ['timestamp-query', 'shader-f16'];
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: wanted.filter((feature) => adapter.features.has(feature)),
  });
  const isFallbackAdapter =
    (adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  return { device, adapterName: describeAdapter(adapter.info), hasTimestampQuery, isFallbackAdapter };
}
