// TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu) in Node, on the `webgpu` package's
// Dawn: the reference point for the matmul figures. The backend asks navigator.gpu for an adapter, as in a
// browser, so navigator.gpu is set to a Dawn instance (and the WebGPU globals installed) before tfjs loads.

import type { Tensor1D, Tensor2D } from '@tensorflow/tfjs-core';

type Tfjs = typeof import('@tensorflow/tfjs-core');

/** What the backend exposes beyond tfjs-core's KernelBackend (public members of WebGPUBackend). */
interface WebGpuBackend {
  device: GPUDevice;
  adapterInfo: { vendor?: string; architecture?: string };
  /** Null when nothing has been recorded since the last submission. */
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export interface TfjsWebGpu {
  tf: Tfjs;
  /** "vendor / architecture", as the engine names adapters. */
  adapterName: string;
  /** Submits what tfjs has recorded and waits until the GPU has finished it. */
  sync(): Promise<void>;
}

// Dawn tears down an instance's devices when the instance is garbage-collected: hold it.
let heldInstance: GPU | null = null;

export async function loadTfjsWebGpu(): Promise<TfjsWebGpu> {
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  heldInstance = webgpu.create([]);
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu: heldInstance, userAgent: 'node' },
    configurable: true,
    writable: true,
  });
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('TensorFlow.js could not start its WebGPU backend in Node');
  await tf.ready();
  const backend = tf.backend() as unknown as WebGpuBackend;
  const { vendor, architecture } = backend.adapterInfo;
  return {
    tf,
    adapterName: [vendor, architecture].filter(Boolean).join(' / ') || 'unknown adapter',
    sync: async () => {
      if (backend.commandEncoder) {
        backend.endComputePassEncoder();
        backend.submitQueue();
      }
      await backend.device.queue.onSubmittedWorkDone();
    },
  };
}

/** y = x W^T + bias as one fused tfjs kernel: nn.Linear's layout, as linearForward computes it. */
export function tfjsLinear(tf: Tfjs, x: Tensor2D, weight: Tensor2D, bias: Tensor1D): Tensor2D {
  return tf.fused.matMul({ a: x, b: weight, transposeB: true, bias }) as Tensor2D;
}
