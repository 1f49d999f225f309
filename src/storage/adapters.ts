// The adapter library in IndexedDB: every trained or imported adapter with its file and metadata.

import { studioDatabase, write, type AdapterRecord } from './db';

/** Newest first. */
export async function listAdapters(): Promise<AdapterRecord[]> {
  const records = await (await studioDatabase()).getAll('adapters');
  return records.sort((a, b) => b.createdAt - a.createdAt);
}

/** Stores an adapter; one that a training run produced replaces the run's checkpoint in the same transaction. */
export async function saveAdapter(record: AdapterRecord, finishedRunId?: string): Promise<void> {
  await write(['adapters', 'checkpoints'], async (tx) => {
    await tx.objectStore('adapters').put(record);
    if (finishedRunId) await tx.objectStore('checkpoints').delete(finishedRunId);
  });
}

export async function renameAdapter(id: string, name: string): Promise<void> {
  await write(['adapters'], async (tx) => {
    const record = await tx.objectStore('adapters').get(id);
    if (record) await tx.objectStore('adapters').put({ ...record, name });
  });
}

/** Deletes an adapter; returns it (undefined when it was not there), which saveAdapter puts back. */
export async function deleteAdapter(id: string): Promise<AdapterRecord | undefined> {
  return write(['adapters'], async (tx) => {
    const record = await tx.objectStore('adapters').get(id);
    await tx.objectStore('adapters').delete(id);
    return record;
  });
}
