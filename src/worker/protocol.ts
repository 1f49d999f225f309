// The messages between the studio page and the engine worker, which alone holds the GPU device.
// The page sends requests, each with an id; the worker answers every request with exactly one
// response carrying the same id, and posts events (such as device loss) whenever they happen.
// Everything here is structured-clone data: no GPU objects ever cross to the page.

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

/** Each request method: what it takes and what its successful response carries. */
export interface EngineMethods {
  /** Opens the device if it is not open yet, and describes it. */
  hello: { params: undefined; result: EngineInfo };
  /** Runs one real kernel on the device and reads the result back. */
  selfTest: { params: undefined; result: SelfTestResult };
}

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

export type EngineEvent = {
  kind: 'event';
  type: 'device-lost';
  /** GPUDeviceLostReason: "unknown" for crashes and resets, "destroyed" when the engine closed it. */
  reason: string;
  message: string;
};

/** Page to worker. */
export type ToEngine = EngineRequest;
/** Worker to page. */
export type FromEngine = EngineResponse | EngineEvent;
