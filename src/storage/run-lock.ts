// One training run at a time per browser profile. The tab that trains holds a Web Lock for as long as
// its run lasts and tells the other tabs how far it got on a BroadcastChannel; the browser releases
// the lock when that tab closes or crashes, which is when its checkpoint really is interrupted.

const TRAINING_LOCK = 'octoclip-training';
const CHANNEL_NAME = 'octoclip-training';

/** What the training tab tells the others. */
export type RunBroadcast =
  | { type: 'progress'; step: number; iterations: number; stepsPerSecond: number | null; secondsLeft: number | null }
  | { type: 'ended' };

/**
 * Runs `work` while holding the training lock. Answers false without running it when another tab of
 * this profile holds the lock (trains).
 */
export async function withTrainingLock(work: () => Promise<void>): Promise<boolean> {
  let ran = false;
  await navigator.locks.request(TRAINING_LOCK, { ifAvailable: true }, async (lock) => {
    if (!lock) return;
    ran = true;
    try {
      await work();
    } finally {
      channel().postMessage({ type: 'ended' } satisfies RunBroadcast);
    }
  });
  return ran;
}

/** Whether a tab of this profile (this one included) holds the training lock now. */
export async function isTrainingLockHeld(): Promise<boolean> {
  const { held } = await navigator.locks.query();
  return (held ?? []).some((lock) => lock.name === TRAINING_LOCK);
}

/** Resolves once no tab holds the training lock (at once when none does). */
export async function whenTrainingLockFree(): Promise<void> {
  // A shared request waits behind the exclusive holder and never blocks another shared one.
  await navigator.locks.request(TRAINING_LOCK, { mode: 'shared' }, () => undefined);
}

export function broadcastRun(message: RunBroadcast): void {
  channel().postMessage(message);
}

/** Calls listener with what the training tab broadcasts (a channel never hears its own messages). */
export function listenToRuns(listener: (message: RunBroadcast) => void): () => void {
  const onMessage = (event: MessageEvent<RunBroadcast>) => listener(event.data);
  channel().addEventListener('message', onMessage);
  return () => channel().removeEventListener('message', onMessage);
}

let shared: BroadcastChannel | null = null;
/** One channel per tab for sending and listening, so that a tab never hears itself. */
function channel(): BroadcastChannel {
  return (shared ??= new BroadcastChannel(CHANNEL_NAME));
}
