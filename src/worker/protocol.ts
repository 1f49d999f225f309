// The messages between the studio page and the engine worker, which alone holds the GPU device.
// The page sends requests, each with an id; the worker answers every request with exactly one
// response carrying the same id, and posts events (such as device loss) whenever they happen.
// Everything here is structured-clone data: no GPU objects ever cross to the page.

import type { AdapterMetadata } from '../adapters/adapter-file';
import type {
  AdapterChoice,
  Precision,
  PrecisionSetting,
  ResolvedPrecision,
  TargetMatrix,
  Tower,
  TrainSettings,
} from '../common/recipe';
import type { MatmulChoice, MatmulTuning } from '../kernels/matmul-tune';
import type { ClipConfig } from '../model/config';
import type { RunPhase } from '../training/run';
import type { RunPartTimes } from '../common/run-time';
import type { Evaluation, StepLog, TrainerCheckpoint } from '../training/trainer';

export type {
  AdapterChoice,
  AdapterMetadata,
  ClipConfig,
  Evaluation,
  MatmulChoice,
  MatmulTuning,
  Precision,
  PrecisionSetting,
  ResolvedPrecision,
  StepLog,
  TargetMatrix,
  TrainerCheckpoint,
  Tower,
};

/** The limits of the opened device that bound what the engine can run. */
export interface DeviceLimits {
  /** Bytes in the largest buffer the device can create. */
  maxBufferSize: number;
  /** Bytes of the largest storage buffer a kernel can bind at once: bounds one tensor. */
  maxStorageBufferBindingSize: number;
  /** Bytes of workgroup-shared memory per workgroup: bounds tile sizes. */
  maxComputeWorkgroupStorageSize: number;
  /** Threads per workgroup. */
  maxComputeInvocationsPerWorkgroup: number;
}

/** What `hello` reports about the device the engine opened. */
export interface EngineInfo {
  /** Such as "google / swiftshader" or "nvidia / hopper" (see describeAdapter). */
  adapterName: string;
  limits: DeviceLimits;
  /** Optional features enabled on the device, such as "timestamp-query". */
  features: string[];
  /** A software (CPU) implementation such as SwiftShader: training is orders of magnitude slower. */
  software: boolean;
  /** The matmul configuration every product runs, tuned on this adapter when the device opened (or cached). */
  matmul: MatmulChoice;
}

/** The worker's proof that compute works: `a + b` by a WGSL kernel on the device, read back. */
export interface SelfTestResult {
  kernel: 'elementwise.add';
  a: number[];
  b: number[];
  /** a + b as read back from the GPU. */
  sum: number[];
  /** The largest |sum - (a + b)| against the same sum on the CPU; 0 when compute works. */
  maxAbsError: number;
  passed: boolean;
  /** Wall-clock time from upload to readback, first-run pipeline compilation included. */
  milliseconds: number;
}

/** A CLIP model's files as Blobs (IndexedDB blobs, or the user's dropped files). */
/** A checkpoint saved in shards: model.safetensors.index.json and the files it names. */
export interface ShardedWeightBlobs {
  index: Blob;
  shards: { name: string; blob: Blob }[];
}

export interface ModelFileBlobs {
  config: Blob;
  weights: Blob | ShardedWeightBlobs;
  vocab: Blob;
  merges: Blob;
  preprocessor?: Blob;
}

/** What the engine reports about the model it loaded. */
export interface LoadedModel {
  id: string;
  /** The Hub revision (a commit when the Hub named it) the files come from; adapters pin it. */
  revision?: string;
  /** Identifies the weights: adapter files record it, and adapters for other weights are refused. */
  fingerprint: string;
  config: ClipConfig;
  /** Bytes the frozen weights occupy on the GPU. */
  weightBytes: number;
  /** How they are held: loading holds them in f32; a run in another precision loads them again in it. */
  precision: Precision;
}

/** Training settings the studio sends; the rest are the recipe's (defaultTrainSettings). */
export interface TrainChoice
  extends Pick<
    TrainSettings,
    'seed' | 'iterations' | 'batchSize' | 'lr' | 'minLr' | 'warmupSteps' | 'weightDecay' | 'augment' | 'evalEvery'
  > {
  /** Images per pass; null: automatic, the largest that fits the GPU memory (choosePassSizes). */
  microBatchSize: number | null;
  /** The GPU memory a run may use, in bytes (0 or absent: automatic, see deviceMemoryOf). */
  memoryBudgetBytes?: number;
  /** How the frozen weights are held during the run (absent: the recipe's, auto; see fitTrainSettings). */
  precision?: PrecisionSetting;
  /** Training images per class (recorded in the adapter: evaluation re-derives the held-out split from it). */
  shots: number;
  /** Instead of the shots: the fraction of each class held out ("use my images"; splitFor), recorded in the adapter too. */
  holdout?: number;
  /** Send a checkpoint every this many steps. */
  checkpointEvery: number;
  /** Stop after this many held-out evaluations without a better accuracy, keeping the best adapter (0 or absent: off). */
  patience?: number;
  /** The dataset's prompt template (absent: the recipe's) and its classes' own prompts, by class name. */
  template?: string;
  classPrompts?: Record<string, string>;
}

/** What a run would cost, before it starts. */
export interface TrainingPlan {
  trainableParameters: number;
  /** Expected peak GPU memory of training, weights included (planTrainingMemory). */
  peakBytes: number;
  /** Where the peak's bytes go (planTrainingMemory's breakdown). */
  breakdown: Record<string, number>;
  /** The passes the run takes: the micro-batch chosen (or the user's) and the classes per text-tower pass. */
  microBatchSize: number;
  textChunk: number;
  /** The GPU memory the passes were sized for (the user's, or deviceMemoryOf's). */
  budgetBytes: number;
  /** The precision the run holds the weights in (the one set, or what auto chose), and why. */
  precision: ResolvedPrecision;
}

/** A few timed training steps with these settings (on synthetic images), before a run starts. */
export interface CalibrationRequest {
  adapter: AdapterChoice;
  training: TrainChoice;
  classes: number;
  /** Images the run would train on: a batch is at most that many. */
  trainingImages: number;
}

/** A step's mean time after the first (which compiles the pipelines), an evaluation's and a checkpoint's. */
export type CalibrationResult = RunPartTimes;

/** Images as Blobs with their file names (for messages) and class labels (indices into the class names). */
export interface LabelledBlobs {
  images: Blob[];
  names: string[];
  labels: number[];
}

export interface TrainRequest {
  /** Chosen by the page; every event of the run carries it. */
  runId: string;
  /** The classes, by label; their prompts are the template's (training.template) or their own (training.classPrompts). */
  classNames: string[];
  support: LabelledBlobs;
  heldOut: LabelledBlobs;
  adapter: AdapterChoice;
  training: TrainChoice;
  /** A checkpoint of this run (same data and settings) to continue from. */
  resumeFrom?: TrainerCheckpoint;
}

export interface TrainedAdapter {
  /** The .safetensors adapter file (encodeAdapterFile). */
  file: Uint8Array;
  meta: AdapterMetadata;
}

export type TrainResult =
  | { status: 'completed'; adapter: TrainedAdapter; zeroShot: Evaluation | null; adapted: Evaluation | null }
  | { status: 'cancelled' };

/** An adapter from the library: its id (the engine keeps the last one loaded) and its file. */
export interface AdapterRef {
  id: string;
  file: Blob;
}

export interface EvaluateRequest {
  adapter: AdapterRef;
  images: LabelledBlobs;
}

export interface EvaluateResult {
  zeroShot: Evaluation;
  adapted: Evaluation;
}

export interface PredictRequest {
  image: Blob;
  /** Without an adapter: the classes to tell apart. With one, its own classes are used. */
  classNames: string[];
  adapter: AdapterRef | null;
}

export interface PredictResult {
  classNames: string[];
  /** Class probabilities of the base model. */
  withoutAdapter: number[];
  /** Class probabilities with the adapter, when one was given. */
  withAdapter: number[] | null;
}

/** Each request method: what it takes and what its successful response carries. */
/** A Hub checkpoint the Model screen offers, with its download size and planned training memory. */
export interface SuggestedModel {
  repo: string;
  name: string;
  note: string;
  downloadBytes: number;
  /** The planner's peak GPU bytes for CLIP-LoRA's recipe (batch 32, 10 classes), whole batch and in micro-batches of 8. */
  trainingBytes: number;
  trainingBytesMicroBatch8: number;
}

export interface EngineMethods {
  /**
   * Opens the device if it is not open yet, and describes it. Opening tunes the matmul unless one of the
   * page's stored tunings is for this adapter; the page stores a new one (`matmul.source` 'tuned').
   */
  hello: { params: { matmulTunings: MatmulTuning[] }; result: EngineInfo };
  /** Runs one real kernel on the device and reads the result back. */
  selfTest: { params: undefined; result: SelfTestResult };
  /** The Hub checkpoints octoclip offers, each planned by a dry run of the engine (no GPU needed). */
  suggestedModels: { params: undefined; result: SuggestedModel[] };
  /** Loads a CLIP from its files (streaming the weights), replacing the loaded one only on success. Posts model-progress. */
  loadModel: { params: { id: string; revision?: string; files: ModelFileBlobs }; result: LoadedModel };
  /** Trainable parameters and expected GPU memory of a run on the loaded model; refuses settings trainStart would refuse. */
  planTraining: { params: { adapter: AdapterChoice; training: TrainChoice; classes: number }; result: TrainingPlan };
  /** Times a few training steps with these settings on the loaded model (in their precision, loading it as trainStart does). */
  calibrateTraining: { params: CalibrationRequest; result: CalibrationResult };
  /**
   * Trains an adapter; answers when the run completes or is cancelled. Posts train-* events meanwhile; when the
   * run's precision is not the loaded weights', loads them again in it first from the same files (model-progress).
   */
  trainStart: { params: TrainRequest; result: TrainResult };
  // biome-ignore-start lint/suspicious/noConfusingVoidType: the answer of a request that returns nothing
  /** Pauses the run after its current step (and posts a checkpoint). */
  trainPause: { params: { runId: string }; result: void };
  trainResume: { params: { runId: string }; result: void };
  /** Stops the run after its current step; trainStart then answers "cancelled". */
  trainCancel: { params: { runId: string }; result: void };
  // biome-ignore-end lint/suspicious/noConfusingVoidType: -
  /** Zero-shot and adapted accuracy on labelled images. */
  evaluate: { params: EvaluateRequest; result: EvaluateResult };
  /** Class probabilities of one image, with and without an adapter. */
  predict: { params: PredictRequest; result: PredictResult };
  /** Reads an adapter file and checks it against the loaded model. */
  inspectAdapter: { params: { file: Blob; fileName: string }; result: AdapterMetadata };
  /** The adapter file with its name in the library recorded in it, for a download. */
  namedAdapterFile: { params: { file: Blob; name: string }; result: Uint8Array };
  /** The adapter as the self-contained PEFT export: PEFT's two files, classes.json and a README.md model card. */
  exportPeft: { params: { file: Blob; name: string; folder: string }; result: PeftFiles };
  /** A PEFT LoRA adapter (the files of its folder or zip, by path) converted into an octoclip adapter file for the loaded model. */
  importPeft: { params: { files: PeftFiles }; result: Uint8Array };
}

/** Files by name (or path in a folder): bytes, or text. */
export type PeftFiles = Record<string, Uint8Array | string>;

export type EngineMethod = keyof EngineMethods;
export type EngineParams<M extends EngineMethod> = EngineMethods[M]['params'];
export type EngineResult<M extends EngineMethod> = EngineMethods[M]['result'];

export type EngineErrorKind =
  /** No navigator.gpu, no adapter, or an adapter below the engine's required limits. */
  | 'webgpu-unavailable'
  /** The device was lost (driver reset, GPU process crash) before or while the request ran. */
  | 'device-lost'
  /** The device reported a validation or out-of-memory error. */
  | 'gpu-error'
  /** A model file cannot be used (ModelFileError: the message names the file and the problem). */
  | 'model-file'
  /** An adapter file cannot be used, or was made for another base model. */
  | 'adapter-file'
  /** An image could not be decoded. */
  | 'image-decode'
  /** The request needs a loaded model and there is none. */
  | 'no-model'
  /** The engine is training and cannot do this now (load another model, start a second run). */
  | 'busy'
  /** Training settings that cannot work together (the message says which). */
  | 'invalid-settings'
  /** The run's planned GPU memory is over the device's limits even with one image per pass. */
  | 'does-not-fit'
  /** The loss became NaN or infinite. */
  | 'diverged'
  /** The worker does not know the method: the page and the worker are from different builds. */
  | 'bad-request'
  /** The worker could not start or stopped (raised by the client, never sent by the worker). */
  | 'worker-failed'
  /** Anything else: a bug. */
  | 'internal';

export interface EngineError {
  kind: EngineErrorKind;
  /** A sentence for the user, saying what to do where there is something to do. */
  message: string;
}

export type EngineRequest<M extends EngineMethod = EngineMethod> = {
  [K in M]: { kind: 'request'; id: number; method: K; params: EngineParams<K> };
}[M];

export type EngineResponse<M extends EngineMethod = EngineMethod> =
  | { kind: 'response'; id: number; ok: true; result: EngineResult<M> }
  | { kind: 'response'; id: number; ok: false; error: EngineError };

export type EngineEvent = { kind: 'event' } & (
  | {
      type: 'device-lost';
      /** GPUDeviceLostReason: "unknown" for crashes and resets, "destroyed" when the engine closed it. */
      reason: string;
      message: string;
    }
  /** Weights streamed to the GPU so far, while loadModel runs (or a run loads them again in its precision). */
  | { type: 'model-progress'; loadedBytes: number; totalBytes: number }
  /** The loaded model's weights were loaded again in another precision (for a run): what it is now. */
  | { type: 'model-reloaded'; model: LoadedModel }
  | { type: 'train-phase'; runId: string; phase: TrainPhase }
  | { type: 'train-progress'; runId: string; iterations: number; log: StepLog }
  /** Held-out accuracy during the run (every evalEvery steps, and before the first step). */
  | { type: 'train-evaluation'; runId: string; step: number; accuracy: number }
  /** Everything needed to continue the run from this step, to be stored by the page. */
  | { type: 'train-checkpoint'; runId: string; checkpoint: TrainerCheckpoint }
);

/** What a run is doing: loading the weights in its precision, decoding images, or one of the driver's phases (RunPhase). */
export type TrainPhase = 'loading-weights' | 'preparing' | RunPhase;

/** Page to worker. */
export type ToEngine = EngineRequest;
/** Worker to page. */
export type FromEngine = EngineResponse | EngineEvent;
