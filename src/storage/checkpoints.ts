// Checkpoints of the training run in progress, so that a reload or a lost GPU resumes it. One record
// per run, replaced at every checkpoint and deleted when the run completes or is discarded.

import { studioDatabase, write, type CheckpointRecord } from './db';

export async function saveCheckpoint(record: CheckpointRecord): Promise<void> {
  await write(['checkpoints'], (tx) =>
    tx
      .objectStore('checkpoints')
      .put(record)
      .then(() => undefined),
  );
}

/** The most recently saved run that did not finish, if any. */
export async function latestCheckpoint(): Promise<CheckpointRecord | undefined> {
  const records = await (await studioDatabase()).getAll('checkpoints');
  return records.sort((a, b) => b.savedAt - a.savedAt)[0];
}

export async function deleteCheckpoint(runId: string): Promise<void> {
  await write(['checkpoints'], (tx) => tx.objectStore('checkpoints').delete(runId));
}
