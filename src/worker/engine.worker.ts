/// <reference lib="webworker" />
// The engine worker: the only place the studio holds a GPU device. It opens the device on the first
// request, answers requests from the page (protocol.ts), and reports device loss as an event; the
// next request after a loss opens a fresh device. It holds at most one model and one training run.

import {
  AdapterFileError,
  AdapterMismatchError,
  decodeAdapterFile,
  encodeAdapterFile,
  namedAdapterFile,
} from '../adapters/adapter-file';
import { trainableParameterCount } from '../adapters/settings';
import { findPeftFiles, fromPeft, PEFT_CLASSES_FILE, peftExportFiles, PeftImportError } from '../adapters/peft';
import { DeviceLostError, deviceLostError, GpuContext, GpuError } from '../gpu/context';
import { acquireDevice, WebGpuUnavailableError } from '../gpu/device';
import type { Tensor } from '../gpu/tensor';
import { add } from '../kernels/elementwise';
import { tuneMatmul } from '../kernels/matmul-tune';
import { ModelFileError } from '../model/safetensors';
import { downloadBytes, KNOWN_CLIP_MODELS, knownClipConfig, plannedTrainingBytes } from '../training/known-models';
import { DivergenceError } from '../training/step';
import { calibrateTraining } from './calibration';
import { ImageDecodeError } from './decode';
import { exclusive } from './gpu-queue';
import { ModelSession } from './model-session';
import type { Precision } from '../common/recipe';
import type {
  EngineError,
  EngineEvent,
  EngineInfo,
  EngineMethod,
  EngineParams,
  EngineRequest,
  EngineResponse,
  EngineResult,
  MatmulTuning,
  SelfTestResult,
  SuggestedModel,
} from './protocol';
import { isCpuAdapterName } from '../kernels/tuning';
import { EngineRefusal } from './refusal';
import { planRun, TrainingRun } from './training-run';

const scope = self as unknown as DedicatedWorkerGlobalScope;

interface Engine {
  ctx: GpuContext;
  info: EngineInfo;
}

let engine: Promise<Engine> | null = null;
/** The loaded model; gone with the device that held it. */
let session: ModelSession | null = null;
let run: TrainingRun | null = null;

/**
 * The open engine, opening a device first if there is none (or the last one was lost), and choosing its
 * matmul configuration: one of `matmulTunings` (the page's cache) for this adapter, else a tune.
 */
function openEngine(matmulTunings: readonly MatmulTuning[] = []): Promise<Engine> {
  if (engine) return engine;
  const opening: Promise<Engine> = (async () => {
    // navigator.gpu is typed as always present, but it is absent outside secure contexts and in
    // browsers without WebGPU; acquireDevice explains what to do in each case.
    const gpu: GPU | undefined = scope.navigator.gpu;
    const { device, adapterName, isFallbackAdapter } = await acquireDevice(gpu);
    const ctx = new GpuContext(device, { adapterName });
    ctx.onDeviceLost((info) => {
      if (engine === opening) engine = null;
      session = null;
      run?.abandon(deviceLostError(info));
      if (info.reason !== 'destroyed') {
        post({ kind: 'event', type: 'device-lost', reason: info.reason, message: info.message || 'no detail given' });
      }
    });
    const matmul = await exclusive(() => tuneMatmul(ctx, matmulTunings));
    return { ctx, info: { ...describeDevice(device, adapterName, isFallbackAdapter), matmul } };
  })();
  engine = opening;
  // A failed attempt is not kept: the next request tries again (after the user changed a setting).
  opening.catch(() => {
    if (engine === opening) engine = null;
  });
  return opening;
}

function describeDevice(
  device: GPUDevice,
  adapterName: string,
  isFallbackAdapter: boolean,
): Omit<EngineInfo, 'matmul'> {
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
    // Not every browser flags its CPU implementations as fallback adapters.
    software: isFallbackAdapter || isCpuAdapterName(adapterName),
  };
}

const SELF_TEST_LENGTH = 8;

async function selfTest(): Promise<SelfTestResult> {
  const { ctx } = await openEngine();
  return exclusive(() => addOnGpu(ctx));
}

async function addOnGpu(ctx: GpuContext): Promise<SelfTestResult> {
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

function loadedModel(): ModelSession {
  if (!session) throw new EngineRefusal('no-model', 'No model is loaded: load one on the Model screen first.');
  return session;
}

function currentRun(runId: string): TrainingRun {
  if (run?.runId !== runId) throw new EngineRefusal('bad-request', 'That training run is not running any more.');
  return run;
}

async function loadModel({ id, revision, files }: EngineParams<'loadModel'>): Promise<EngineResult<'loadModel'>> {
  if (run)
    throw new EngineRefusal(
      'busy',
      'A training run is using the model: let it finish or cancel it before loading another model.',
    );
  const { ctx } = await openEngine();
  const loaded = await exclusive(() =>
    ModelSession.load(ctx, { id, revision }, files, (loadedBytes, totalBytes) =>
      post({ kind: 'event', type: 'model-progress', loadedBytes, totalBytes }),
    ),
  );
  // Replaced only now: a model file that fails to load leaves the previous model in place.
  session?.destroy();
  session = loaded;
  return loaded.describe();
}

/** The calibration in progress, if any: the session its steps run on is not destroyed under them. */
let calibration: Promise<unknown> = Promise.resolve();

/**
 * The loaded model with its weights in `precision`: loaded again from the same files when they are held
 * otherwise (posting model-progress, as a load does), and kept in place of the session it replaces. Only
 * `forRun`, the run going (if any), may replace the session it trains on; it waits for a calibration's steps.
 */
async function sessionIn(precision: Precision, forRun: TrainingRun | null = null): Promise<ModelSession> {
  const current = loadedModel();
  const wanted = await exclusive(() =>
    current.inPrecision(precision, (loadedBytes, totalBytes) =>
      post({ kind: 'event', type: 'model-progress', loadedBytes, totalBytes }),
    ),
  );
  if (wanted === current) return current;
  if (session !== current || run !== forRun) {
    wanted.destroy();
    throw new EngineRefusal(
      'busy',
      session !== current
        ? 'Another model was loaded meanwhile: start again on it.'
        : 'A training run started meanwhile: its own steps show how fast training is.',
    );
  }
  await calibration;
  current.destroy();
  session = wanted;
  post({ kind: 'event', type: 'model-reloaded', model: wanted.describe() });
  return wanted;
}

async function planTraining(params: EngineParams<'planTraining'>): Promise<EngineResult<'planTraining'>> {
  const { model } = loadedModel();
  const { adapter, training, plan, budgetBytes, precision } = await planRun(
    model,
    params.adapter,
    params.training,
    params.classes,
  );
  return {
    trainableParameters: trainableParameterCount(model.config, adapter),
    peakBytes: plan.peakBytes,
    breakdown: plan.breakdown,
    microBatchSize: training.microBatchSize,
    textChunk: training.textChunk,
    budgetBytes,
    precision,
  };
}

async function trainStart(request: EngineParams<'trainStart'>): Promise<EngineResult<'trainStart'>> {
  if (run) throw new EngineRefusal('busy', 'A training run is already going: one run at a time.');
  const started: TrainingRun = new TrainingRun(
    loadedModel(),
    request,
    (event, transfer) => scope.postMessage(event, transfer ?? []),
    (precision) => sessionIn(precision, started),
  );
  run = started;
  try {
    return await started.run();
  } finally {
    if (run === started) run = null;
  }
}

async function calibrate(params: EngineParams<'calibrateTraining'>): Promise<EngineResult<'calibrateTraining'>> {
  if (run) throw new EngineRefusal('busy', 'A training run is going: its own steps show how fast training is.');
  const measured = calibrateTraining(loadedModel(), params, (precision) => sessionIn(precision));
  calibration = measured.catch(() => undefined);
  return measured;
}

let suggested: Promise<SuggestedModel[]> | null = null;

/** The offered models' rows, planned once per worker (dry runs: no device needed). */
function suggestedModels(): Promise<SuggestedModel[]> {
  suggested ??= (async () => {
    const rows: SuggestedModel[] = [];
    for (const known of KNOWN_CLIP_MODELS) {
      const config = knownClipConfig(known);
      rows.push({
        repo: known.repo,
        name: known.name,
        note: known.note,
        downloadBytes: downloadBytes(config),
        trainingBytes: await plannedTrainingBytes(config),
        trainingBytesMicroBatch8: await plannedTrainingBytes(config, 8),
      });
    }
    return rows;
  })().catch((error) => {
    suggested = null;
    throw error;
  });
  return suggested;
}

const handlers: Handlers = {
  hello: async ({ matmulTunings }) => (await openEngine(matmulTunings)).info,
  suggestedModels,
  selfTest,
  loadModel,
  planTraining,
  calibrateTraining: calibrate,
  trainStart,
  trainPause: async ({ runId }) => currentRun(runId).pause(),
  trainResume: async ({ runId }) => currentRun(runId).resume(),
  trainCancel: async ({ runId }) => currentRun(runId).cancel(),
  evaluate: (params) => exclusive(() => loadedModel().evaluate(params)),
  predict: (params) => exclusive(() => loadedModel().predict(params)),
  inspectAdapter: async ({ file, fileName }) => (await loadedModel().readAdapter(file, fileName)).meta,
  // Neither needs a model: the adapter file holds everything the files written say.
  namedAdapterFile: async ({ file, name }) =>
    namedAdapterFile(new Uint8Array(await file.arrayBuffer()), name, 'the adapter'),
  exportPeft: async ({ file, name, folder }) => {
    const { meta, tensors } = decodeAdapterFile(new Uint8Array(await file.arrayBuffer()), 'the adapter');
    return peftExportFiles({ ...meta, name }, tensors, folder);
  },
  importPeft: async ({ files }) => {
    const bytes = new Map(
      Object.entries(files).map(([path, content]) => [
        path,
        typeof content === 'string' ? new TextEncoder().encode(content) : content,
      ]),
    );
    const peft = findPeftFiles(bytes);
    if (!peft.classes) {
      throw new EngineRefusal(
        'invalid-settings',
        `This PEFT adapter has no ${PEFT_CLASSES_FILE} with its class names: add one, or import it with octoclip import-peft --classes.`,
      );
    }
    const { meta, tensors } = fromPeft(peft.config, peft.weights, loadedModel().describe(), {
      classNames: peft.classes.class_names,
      promptTemplate: peft.classes.prompt_template,
      name: peft.classes.name,
      metrics: peft.classes.metrics,
    });
    return encodeAdapterFile(meta, tensors);
  },
};

function post(message: EngineResponse | EngineEvent): void {
  scope.postMessage(message);
}

function toEngineError(error: unknown): EngineError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof EngineRefusal) return { kind: error.kind, message };
  if (error instanceof WebGpuUnavailableError) return { kind: 'webgpu-unavailable', message };
  if (error instanceof DeviceLostError) return { kind: 'device-lost', message };
  if (error instanceof GpuError) return { kind: 'gpu-error', message };
  if (error instanceof ModelFileError) return { kind: 'model-file', message };
  if (error instanceof AdapterFileError || error instanceof AdapterMismatchError || error instanceof PeftImportError)
    return { kind: 'adapter-file', message };
  if (error instanceof ImageDecodeError) return { kind: 'image-decode', message };
  if (error instanceof DivergenceError) return { kind: 'diverged', message };
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
