// A dry run: a GpuContext on a GPUDevice that allocates nothing. A buffer is a stub that knows its
// size and label; pipelines, bind groups, command encoders and the queue do nothing; a mapped read
// holds zeros; dispatches are checked, then dropped. ctx.memory counts bytes exactly as on a GPU, so
// running the engine's own code on it measures what that code would allocate
// (src/training/memory-plan.ts), at the speed of plain JavaScript.
//
// The device implements the part of GPUDevice that a GpuContext uses when it records no dispatches;
// engine code that calls more of the WebGPU API fails here with a TypeError naming the missing method.

import { GpuContext, GpuError } from './context';

/** The limits a dry run checks against, by default none that a plan could reach. */
export type DryRunLimits = Partial<Record<'maxBufferSize' | 'maxStorageBufferBindingSize', number>>;

/** WebGPU's guaranteed workgroups per grid dimension: grid1d folds grids to stay under it on every device. */
const WORKGROUPS_PER_DIMENSION = 65535;

export function createDryRunContext(limits: DryRunLimits = {}): GpuContext {
  return new GpuContext(createDryRunDevice(limits), { adapterName: 'dry run', recordsDispatches: false });
}

function createDryRunDevice(limits: DryRunLimits): GPUDevice {
  const deviceLimits = {
    maxBufferSize: limits.maxBufferSize ?? Number.MAX_SAFE_INTEGER,
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ?? Number.MAX_SAFE_INTEGER,
    maxComputeWorkgroupsPerDimension: WORKGROUPS_PER_DIMENSION,
  };
  const nothing = () => undefined;
  const encoder = { clearBuffer: nothing, copyBufferToBuffer: nothing, finish: () => ({}) };
  const device = {
    label: 'dry run',
    limits: deviceLimits,
    features: new Set<string>(),
    lost: new Promise<GPUDeviceLostInfo>(nothing), // never lost
    queue: { writeBuffer: nothing, submit: nothing, onSubmittedWorkDone: async () => undefined },
    createBuffer: (descriptor: GPUBufferDescriptor) => dryRunBuffer(descriptor, deviceLimits.maxBufferSize),
    createCommandEncoder: () => encoder,
    addEventListener: nothing,
    destroy: nothing,
  };
  return device as unknown as GPUDevice;
}

function dryRunBuffer({ size, label = '', usage }: GPUBufferDescriptor, maxBufferSize: number): GPUBuffer {
  // The one check a real createBuffer makes that the engine does not make first (a GPU reports it at the next sync).
  if (size > maxBufferSize)
    throw new GpuError(`${label}: a buffer of ${size} bytes exceeds maxBufferSize (${maxBufferSize})`);
  const buffer = {
    size,
    label,
    usage,
    destroy: () => undefined,
    mapAsync: async () => undefined,
    getMappedRange: (offset = 0, length = size - offset) => new ArrayBuffer(length),
    unmap: () => undefined,
  };
  return buffer as unknown as GPUBuffer;
}
