/// <reference lib="webworker" />
// The engine worker: the only place the studio holds a GPU device. It opens the device on the first
// request, answers requests from the page (protocol.ts), and reports device loss as an event; the
// next request after a loss opens a fresh device.

import { DeviceLostError, GpuContext, GpuError } from '../gpu/context';
import { acquireDevice, WebGpuUnavailableError } from '../gpu/device';
import type { Tensor } from '../gpu/tensor';
import { add } from '../kernels/elementwise';
import type {
  EngineError,
  EngineEvent,
  EngineInfo,
  EngineMethod,
  EngineParams,
  EngineRequest,
  EngineResponse,
  EngineResult,
  SelfTestResult,
} from './protocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;

interface Engine {
  ctx: GpuContext;
  info: EngineInfo;
}

let engine: Promise<Engine> | null = null;

/** The open engine, opening a device first if there is none (or the last one was lost). */
function openEngine(): Promise<Engine> {
  if (engine) return engine;
  const opening: Promise<Engine> = (async () => {
    // navigator.gpu is typed as always present, but it is absent outside secure contexts and in
    // browsers without WebGPU; acquireDevice explains what to do in each case.
    const gpu: GPU | undefined = scope.navigator.gpu;
    const { device, adapterName } = await acquireDevice(gpu);
    const ctx = new GpuContext(device, { adapterName });
    ctx.onDeviceLost((info) => {
      if (engine === opening) engine = null;
      if (info.reason !== 'destroyed') {
        post({ kind: 'event', type: 'device-lost', reason: info.reason, message: info.message || 'no detail given' });
      }
    });
    return { ctx, info: describeDevice(device, adapterName) };
  })();
  engine = opening;
  // A failed attempt is not kept: the next request tries again (after the user changed a setting).
  opening.catch(() => {
    if (engine === opening) engine = null;
  });
  return opening;
}

function describeDevice(device: GPUDevice, adapterName: string): EngineInfo {
  const { limits } = device;
  return {
    adapterName,
    limits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
    features: [...device.features].sort(),
  };
}

const SELF_TEST_LENGTH = 8;

async function selfTest(): Promise<SelfTestResult> {
  const { ctx } = await openEngine();
  // Small integers: their sums are exact in f32, so anything but a zero error is a real fault.
  const a = Float32Array.from({ length: SELF_TEST_LENGTH }, (_, i) => i + 1);
  const b = Float32Array.from({ length: SELF_TEST_LENGTH }, (_, i) => 10 * (i + 1));
  const start = performance.now();
  const created: Tensor[] = [];
  const tensor = (label: string, data?: Float32Array): Tensor => {
    const t = ctx.tensor([SELF_TEST_LENGTH], label, data);
    created.push(t);
    return t;
  };
  try {
    const out = tensor('self-test a + b');
    add(ctx, tensor('self-test a', a), tensor('self-test b', b), out);
    const sum = await ctx.read(out);
    const milliseconds = performance.now() - start;
    const maxAbsError = sum.reduce((max, value, i) => Math.max(max, Math.abs(value - (a[i] + b[i]))), 0);
    return {
      kernel: 'elementwise.add',
      a: [...a],
      b: [...b],
      sum: [...sum],
      maxAbsError,
      passed: maxAbsError === 0,
      milliseconds,
    };
  } finally {
    for (const t of created) t.destroy();
  }
}

type Handlers = { [M in EngineMethod]: (params: EngineParams<M>) => Promise<EngineResult<M>> };

const handlers: Handlers = {
  hello: async () => (await openEngine()).info,
  selfTest,
};

function post(message: EngineResponse | EngineEvent): void {
  scope.postMessage(message);
}

function toEngineError(error: unknown): EngineError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof WebGpuUnavailableError) return { kind: 'webgpu-unavailable', message };
  if (error instanceof DeviceLostError) return { kind: 'device-lost', message };
  if (error instanceof GpuError) return { kind: 'gpu-error', message };
  return { kind: 'internal', message: `The engine failed unexpectedly: ${message}` };
}

async function answer<M extends EngineMethod>(request: EngineRequest<M>): Promise<void> {
  if (!Object.hasOwn(handlers, request.method)) {
    post({
      kind: 'response',
      id: request.id,
      ok: false,
      error: {
        kind: 'bad-request',
        message: `The engine does not know "${String(request.method)}": reload the page to get matching versions.`,
      },
    });
    return;
  }
  try {
    const handler: Handlers[M] = handlers[request.method];
    const result = await handler(request.params);
    post({ kind: 'response', id: request.id, ok: true, result });
  } catch (error) {
    post({ kind: 'response', id: request.id, ok: false, error: toEngineError(error) });
  }
}

scope.addEventListener('message', (event: MessageEvent<EngineRequest>) => {
  void answer(event.data);
});
