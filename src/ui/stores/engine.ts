// The engine as the UI sees it: whether the worker has a GPU device, what it is, and whether real
// compute on it works. Components read this store; only its actions talk to the worker.

import { create } from 'zustand';
import { EngineRequestError, startEngine, type EngineClient } from '../../worker/client';
import type { EngineErrorKind, EngineEvent, EngineInfo, SelfTestResult } from '../../worker/protocol';

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

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function createEngineStore(start: () => EngineClient = startEngine) {
  return create<EngineState>()((set, get) => {
    let client: EngineClient | null = null;
    let connecting: Promise<void> | null = null;
    // Bumped by every connect and every device loss, so that answers about an older device are dropped.
    let generation = 0;

    function onEvent(event: EngineEvent): void {
      if (event.type !== 'device-lost') return;
      generation++;
      const { connection } = get();
      set({
        connection: { phase: 'lost', info: connection.phase === 'ready' ? connection.info : null, message: event.message },
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
        const info = await engine().request('hello');
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
          if (error instanceof EngineRequestError && (error.kind === 'device-lost' || error.kind === 'worker-failed')) {
            set({ connection: describeFailure(error, connection.info), selfTest: { phase: 'idle' } });
          } else {
            set({ selfTest: { phase: 'failed', message: errorMessage(error) } });
          }
        }
      },
    };
  });
}

export const useEngineStore = createEngineStore();
