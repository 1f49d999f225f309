// The model cache: each model's files (weights in one file or in shards) as consecutive Blob chunks in
// IndexedDB. A Hub download appends chunks as they arrive (so it resumes after a dropped connection or a
// closed tab); local files are stored as one chunk each. Loading hands the engine Blobs, which it reads slice by slice.

import { MODEL_FILES, REQUIRED_TEXT_FILES } from '../common/file-names';
import { parseShardIndex } from '../common/shard-index';
import type { ModelFileBlobs } from '../worker/protocol';
import { studioDatabase, write, type ModelRecord, type StoredFileState, type WriteTransaction } from './db';

type ModelStores = ('models' | 'modelFiles')[];

export function isFileComplete(file: StoredFileState): boolean {
  return file.absent === true || (file.size !== null && file.stored === file.size);
}

/** Every file the record lists is stored, with the text files and weights (one file, or an index and its shards). */
export function isModelComplete(record: ModelRecord): boolean {
  const stored = (name: string) => {
    const file = record.files.find((f) => f.name === name);
    return file !== undefined && !file.absent && isFileComplete(file);
  };
  return (
    REQUIRED_TEXT_FILES.every(stored) &&
    (stored(MODEL_FILES.weights) || stored(MODEL_FILES.weightsIndex)) &&
    record.files.every(isFileComplete)
  );
}

export function storedBytes(record: ModelRecord): number {
  return record.files.reduce((sum, file) => sum + file.stored, 0);
}

export async function listModels(): Promise<ModelRecord[]> {
  const db = await studioDatabase();
  return (await db.getAll('models')).sort((a, b) => (b.lastLoadedAt ?? b.savedAt) - (a.lastLoadedAt ?? a.savedAt));
}

/** Creates the record of a model about to be downloaded, keeping whatever is stored already. */
export async function ensureModelRecord(
  id: string,
  source: ModelRecord['source'],
  fileNames: readonly string[],
): Promise<ModelRecord> {
  return write(['models'], async (tx) => {
    const existing = await tx.objectStore('models').get(id);
    const record: ModelRecord = existing ?? { id, source, files: [], savedAt: Date.now() };
    for (const name of fileNames) {
      if (!record.files.some((f) => f.name === name)) record.files.push({ name, size: null, stored: 0, chunks: 0 });
    }
    await tx.objectStore('models').put(record);
    return record;
  });
}

/** Appends a chunk to a file and records the new stored size, in one transaction. */
export async function appendModelChunk(
  modelId: string,
  fileName: string,
  blob: Blob,
  size: number | null,
): Promise<StoredFileState> {
  return write(['models', 'modelFiles'], async (tx) => {
    const record = await requireRecord(tx.objectStore('models').get(modelId), modelId);
    const file = requireFile(record, fileName);
    await tx.objectStore('modelFiles').put({ modelId, file: fileName, index: file.chunks, blob });
    file.chunks += 1;
    file.stored += blob.size;
    file.size = size;
    await tx.objectStore('models').put(record);
    return { ...file };
  });
}

/** Sets a file's state without data: its size once known, or that the Hub has no such file. */
export async function setModelFileState(
  modelId: string,
  fileName: string,
  state: Pick<StoredFileState, 'size' | 'absent'>,
): Promise<void> {
  await write(['models'], async (tx) => {
    const record = await requireRecord(tx.objectStore('models').get(modelId), modelId);
    Object.assign(requireFile(record, fileName), state);
    await tx.objectStore('models').put(record);
  });
}

/** Forgets what was stored of one file (the server sent the whole file again, or another version of it). */
export async function restartModelFile(modelId: string, fileName: string): Promise<void> {
  await write(['models', 'modelFiles'], async (tx) => {
    const record = await requireRecord(tx.objectStore('models').get(modelId), modelId);
    const file = requireFile(record, fileName);
    const chunks = tx.objectStore('modelFiles');
    for (let index = 0; index < file.chunks; index++) await chunks.delete([modelId, fileName, index]);
    Object.assign(file, { size: null, stored: 0, chunks: 0, absent: undefined });
    await tx.objectStore('models').put(record);
  });
}

/** Stores files the user gave (already loaded successfully), replacing a cached model of the same id. */
export async function saveLocalModel(id: string, files: Map<string, Blob>): Promise<void> {
  await write(['models', 'modelFiles'], async (tx) => {
    await deleteChunks(tx, id);
    const record: ModelRecord = { id, source: 'local', files: [], savedAt: Date.now(), lastLoadedAt: Date.now() };
    for (const [name, blob] of files) {
      await tx.objectStore('modelFiles').put({ modelId: id, file: name, index: 0, blob });
      record.files.push({ name, size: blob.size, stored: blob.size, chunks: 1 });
    }
    await tx.objectStore('models').put(record);
  });
}

/** One stored file as a Blob (a concatenation of its chunks). */
export async function storedFile(id: string, name: string): Promise<Blob> {
  const db = await studioDatabase();
  const chunks = (await db.getAllFromIndex('modelFiles', 'byModel', id)).filter((c) => c.file === name);
  return new Blob(chunks.sort((a, b) => a.index - b.index).map((c) => c.blob));
}

/** A complete cached model's files as Blobs (each a concatenation of its chunks: no bytes are copied). */
export async function modelFileBlobs(id: string): Promise<ModelFileBlobs> {
  const db = await studioDatabase();
  const tx = db.transaction(['models', 'modelFiles']);
  const record = await requireRecord(tx.objectStore('models').get(id), id);
  const chunks = await tx.objectStore('modelFiles').index('byModel').getAll(id);
  await tx.done;
  const fileBlob = (name: string): Blob | undefined => {
    const file = record.files.find((f) => f.name === name);
    if (!file || file.absent || !isFileComplete(file)) return undefined;
    const parts = chunks.filter((c) => c.file === name).sort((a, b) => a.index - b.index);
    return new Blob(parts.map((c) => c.blob));
  };
  const required = (name: string): Blob => {
    const blob = fileBlob(name);
    if (!blob) throw new Error(`${id}: ${name} is not completely stored; download it again.`);
    return blob;
  };
  const shardedWeights = async () => {
    const index = required(MODEL_FILES.weightsIndex);
    const names = parseShardIndex(await index.text()).shardNames;
    return { index, shards: names.map((name) => ({ name, blob: required(name) })) };
  };
  return {
    config: required(MODEL_FILES.config),
    weights: fileBlob(MODEL_FILES.weights) ?? (await shardedWeights()),
    vocab: required(MODEL_FILES.vocab),
    merges: required(MODEL_FILES.merges),
    preprocessor: fileBlob(MODEL_FILES.preprocessor),
  };
}

/** Forgets a model record that holds no bytes (a Hub attempt that failed before any arrived). */
export async function forgetIfEmpty(id: string): Promise<void> {
  await write(['models'], async (tx) => {
    const record = await tx.objectStore('models').get(id);
    if (record && storedBytes(record) === 0) await tx.objectStore('models').delete(id);
  });
}

/** Records the Hub commit a download is pinned to. */
export async function setModelRevision(id: string, revision: string): Promise<void> {
  await write(['models'], async (tx) => {
    const record = await requireRecord(tx.objectStore('models').get(id), id);
    await tx.objectStore('models').put({ ...record, revision });
  });
}

/** Notes that a model loaded, with its fingerprint. */
export async function markModelLoaded(id: string, fingerprint: string): Promise<void> {
  await write(['models'], async (tx) => {
    const record = await tx.objectStore('models').get(id);
    if (!record) return;
    await tx.objectStore('models').put({ ...record, fingerprint, lastLoadedAt: Date.now() });
  });
}

export async function deleteModel(id: string): Promise<void> {
  await write(['models', 'modelFiles'], async (tx) => {
    await deleteChunks(tx, id);
    await tx.objectStore('models').delete(id);
  });
}

export async function clearModelCache(): Promise<void> {
  await write(['models', 'modelFiles'], async (tx) => {
    await tx.objectStore('modelFiles').clear();
    await tx.objectStore('models').clear();
  });
}

async function deleteChunks(tx: WriteTransaction<ModelStores>, modelId: string): Promise<void> {
  const chunks = tx.objectStore('modelFiles');
  for (const key of await chunks.index('byModel').getAllKeys(modelId)) await chunks.delete(key);
}

async function requireRecord(pending: Promise<ModelRecord | undefined>, id: string): Promise<ModelRecord> {
  const record = await pending;
  if (!record) throw new Error(`The model ${id} is no longer in the cache.`);
  return record;
}

function requireFile(record: ModelRecord, name: string): StoredFileState {
  const file = record.files.find((f) => f.name === name);
  if (!file) throw new Error(`The model ${record.id} has no file ${name} in the cache.`);
  return file;
}
