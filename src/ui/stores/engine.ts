// The engine as the UI sees it: whether the worker has a GPU device, what it is, and whether real
// compute on it works. Components read this store; only its actions talk to the worker. Opening a device
// hands the worker the matmul tunings stored in IndexedDB, and stores the one it reports when it tuned.

import { create } from 'zustand';
import { readMatmulTunings, saveMatmulTuning } from '../../storage/matmul-tunings';
import { EngineRequestError, startEngine, type EngineClient, type ParamsArgs } from '../../worker/client';
import type {
  EngineErrorKind,
  EngineEvent,
  EngineInfo,
  EngineMethod,
  EngineResult,
  SelfTestResult,
} from '../../worker/protocol';

export type Connection =
  | { phase: 'connecting' }
  | { phase: 'ready'; info: EngineInfo }
  /** No WebGPU, no adapter, or an adapter too limited: message says what to do. */
  | { phase: 'unavailable'; message: string }
  /** The device was lost; connect() opens a new one. info describes the lost device, if known. */
  | { phase: 'lost'; info: EngineInfo | null; message: string }
  | { phase: 'failed'; kind: EngineErrorKind; message: string };

export type SelfTest =
  | { phase: 'idle' }
  | { phase: 'running' }
  | { phase: 'done'; result: SelfTestResult }
  | { phase: 'failed'; message: string };

export interface EngineState {
  connection: Connection;
  selfTest: SelfTest;
  /** Opens the device in the worker (a fresh one after a loss or failure), then runs the self-test. */
  connect(): Promise<void>;
  /** Runs the worker's self-test kernel; does nothing unless the device is ready and idle. */
  runSelfTest(): Promise<void>;
  /** Sends a request to the engine (the other stores' only way to it); a lost device or worker also updates `connection`. */
  request<M extends EngineMethod>(method: M, ...args: ParamsArgs<M>): Promise<EngineResult<M>>;
  /** Calls listener for every engine event, across worker restarts; returns the unsubscribe function. */
  listen(listener: (event: EngineEvent) => void): () => void;
}

function describeFailure(error: unknown, info: EngineInfo | null): Connection {
  if (!(error instanceof EngineRequestError)) {
    return { phase: 'failed', kind: 'internal', message: error instanceof Error ? error.message : String(error) };
  }
  switch (error.kind) {
    case 'webgpu-unavailable':
      return { phase: 'unavailable', message: error.message };
    case 'device-lost':
      return { phase: 'lost', info, message: error.message };
    default:
      return { phase: 'failed', kind: error.kind, message: error.message };
  }
}

function isConnectionFailure(error: unknown): error is EngineRequestError {
  return error instanceof EngineRequestError && (error.kind === 'device-lost' || error.kind === 'worker-failed');
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function createEngineStore(start: () => EngineClient = startEngine) {
  return create<EngineState>()((set, get) => {
    let client: EngineClient | null = null;
    let connecting: Promise<void> | null = null;
    // Bumped by every connect and every device loss, so that answers about an older device are dropped.
    let generation = 0;
    const listeners = new Set<(event: EngineEvent) => void>();

    function onEvent(event: EngineEvent): void {
      for (const listener of listeners) listener(event);
      if (event.type !== 'device-lost') return;
      generation++;
      const { connection } = get();
      set({
        connection: {
          phase: 'lost',
          info: connection.phase === 'ready' ? connection.info : null,
          message: event.message,
        },
        selfTest: { phase: 'idle' },
      });
    }

    /** The worker, started again if the last one failed. */
    function engine(): EngineClient {
      if (!client || client.failed) {
        client?.dispose();
        client = start();
        client.onEvent(onEvent);
      }
      return client;
    }

    async function openDevice(): Promise<void> {
      const current = ++generation;
      set({ connection: { phase: 'connecting' }, selfTest: { phase: 'idle' } });
      try {
        // Without readable storage the engine tunes again: slower to open, nothing lost.
        const matmulTunings = await readMatmulTunings().catch(() => []);
        const info = await engine().request('hello', { matmulTunings });
        if (info.matmul.source === 'tuned') void saveMatmulTuning(info.matmul.tuning).catch(() => undefined);
        if (current !== generation) return;
        set({ connection: { phase: 'ready', info } });
      } catch (error) {
        if (current === generation) set({ connection: describeFailure(error, null) });
        return;
      }
      await get().runSelfTest();
    }

    return {
      connection: { phase: 'connecting' },
      selfTest: { phase: 'idle' },

      connect() {
        connecting ??= openDevice().finally(() => {
          connecting = null;
        });
        return connecting;
      },

      async runSelfTest() {
        const { connection, selfTest } = get();
        if (connection.phase !== 'ready' || selfTest.phase === 'running') return;
        const current = generation;
        set({ selfTest: { phase: 'running' } });
        try {
          const result = await engine().request('selfTest');
          if (current === generation) set({ selfTest: { phase: 'done', result } });
        } catch (error) {
          if (current !== generation) return;
          if (isConnectionFailure(error)) {
            set({ connection: describeFailure(error, connection.info), selfTest: { phase: 'idle' } });
          } else {
            set({ selfTest: { phase: 'failed', message: errorMessage(error) } });
          }
        }
      },

      async request(method, ...args) {
        const current = generation;
        try {
          return await engine().request(method, ...args);
        } catch (error) {
          // A device-lost event has usually said so already; a failed worker has no other way to.
          if (isConnectionFailure(error) && current === generation && get().connection.phase === 'ready') {
            generation++;
            const { connection } = get();
            set({
              connection: describeFailure(error, connection.phase === 'ready' ? connection.info : null),
              selfTest: { phase: 'idle' },
            });
          }
          throw error;
        }
      },

      listen(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
  });
}

export const useEngineStore = createEngineStore();
