// The page's side of the engine protocol: requests become promises, events go to listeners.

import type {
  EngineErrorKind,
  EngineEvent,
  EngineMethod,
  EngineParams,
  EngineRequest,
  EngineResult,
  FromEngine,
} from './protocol';

/** A request the engine answered with an error, or could not answer because the worker failed. */
export class EngineRequestError extends Error {
  override name = 'EngineRequestError';

  constructor(
    readonly kind: EngineErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** The part of a Worker the client uses (a fake in tests). */
export interface EnginePort {
  postMessage(message: EngineRequest): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<FromEngine>) => void): void;
  addEventListener(type: 'error', listener: (event: ErrorEvent) => void): void;
  addEventListener(type: 'messageerror', listener: (event: MessageEvent) => void): void;
  terminate(): void;
}

/** Methods without params take no argument: `client.request('selfTest')`. */
export type ParamsArgs<M extends EngineMethod> = EngineParams<M> extends undefined ? [] : [params: EngineParams<M>];

interface Pending {
  resolve(result: unknown): void;
  reject(error: EngineRequestError): void;
}

export class EngineClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: EngineEvent) => void>();
  private failure: EngineRequestError | null = null;

  constructor(private readonly port: EnginePort) {
    port.addEventListener('message', (event) => this.receive(event.data));
    // A worker that fails to load, or throws outside a request, is not trusted with more work.
    port.addEventListener('error', (event) => {
      event.preventDefault();
      this.fail(`The engine worker stopped: ${event.message || 'its script could not be loaded'}. Reload the page.`);
    });
    port.addEventListener('messageerror', () => {
      this.fail('The engine worker sent a message the page could not read. Reload the page.');
    });
  }

  /** True once the worker has failed; every request then rejects with kind "worker-failed". */
  get failed(): boolean {
    return this.failure !== null;
  }

  request<M extends EngineMethod>(method: M, ...args: ParamsArgs<M>): Promise<EngineResult<M>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const params = args[0] as EngineParams<M>;
    return new Promise<EngineResult<M>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (result: unknown) => void, reject });
      // EngineRequest<M> is a union over M; a generic M cannot be narrowed to one member of it.
      this.port.postMessage({ kind: 'request', id, method, params } as EngineRequest);
    });
  }

  /** Calls listener for every event the engine posts; returns the unsubscribe function. */
  onEvent(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the worker; pending requests reject. */
  dispose(): void {
    this.fail('The engine was shut down.');
  }

  private receive(message: FromEngine): void {
    if (message.kind === 'event') {
      for (const listener of this.listeners) listener(message);
      return;
    }
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(new EngineRequestError(message.error.kind, message.error.message));
  }

  private fail(message: string): void {
    if (this.failure) return;
    this.failure = new EngineRequestError('worker-failed', message);
    this.port.terminate();
    for (const { reject } of this.pending.values()) reject(this.failure);
    this.pending.clear();
  }
}

/** Starts the engine worker (one GPU device per worker). */
export function startEngine(): EngineClient {
  const worker = new Worker(new URL('./engine.worker.ts', import.meta.url), {
    type: 'module',
    name: 'octoclip-engine',
  });
  return new EngineClient(worker);
}
