// The studio's IndexedDB database: one versioned schema, and the rule that every write goes through
// `write`, a transaction that either lands completely or not at all, so that a full disk or a closed tab
// never leaves half a dataset or a model file with a gap in it.

import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';
import type { AdapterMetadata } from '../adapters/adapter-file';
import type { StepLog, TrainerCheckpoint } from '../training/trainer';
import type { AdapterChoice, MatmulTuning, TrainChoice } from '../worker/protocol';

const DATABASE_NAME = 'octoclip';
const DATABASE_VERSION = 3;

/** A model in the cache: where it came from and how much of each file is stored. */
export interface ModelRecord {
  /** A Hub repo id ("openai/clip-vit-base-patch32", or "org/name@revision"), or "local/<name>" for files the user gave. */
  id: string;
  source: 'hub' | 'local';
  /** The Hub commit the files were downloaded at, once the Hub named it: adapters pin it. */
  revision?: string;
  files: StoredFileState[];
  /** Weights fingerprint, once the model has loaded: adapter imports are checked against it. */
  fingerprint?: string;
  /** When the model was last loaded: the studio loads the latest again on the next visit. */
  lastLoadedAt?: number;
  savedAt: number;
}

export interface StoredFileState {
  name: string;
  /** Bytes the whole file has, once known. */
  size: number | null;
  /** Bytes stored so far, in `chunks` records of modelFiles. */
  stored: number;
  chunks: number;
  /** The Hub has no such file (preprocessor_config.json is optional). */
  absent?: boolean;
}

/** A piece of a model file: files are stored as consecutive Blobs, so a download resumes where it stopped. */
export interface ModelChunkRecord {
  modelId: string;
  file: string;
  index: number;
  blob: Blob;
}

export interface ClassRecord {
  id: string;
  name: string;
  /** Sort key: classes keep the order they were added in, which is their label order. */
  position: number;
  /** The class's own prompt, used instead of the dataset's template (absent: the template's). */
  prompt?: string;
}

/** The dataset's own settings, one record: the prompt template its classes' names fill in. */
export interface DatasetSettingsRecord {
  id: 'dataset';
  promptTemplate: string;
}

export interface ImageRecord {
  id: string;
  classId: string;
  /** The file's name as the user gave it. */
  name: string;
  blob: Blob;
  /** A small JPEG for the dataset view. */
  thumbnail: Blob;
  width: number;
  height: number;
  addedAt: number;
}

export interface AdapterRecord {
  id: string;
  name: string;
  createdAt: number;
  source: 'trained' | 'imported';
  meta: AdapterMetadata;
  /** The .safetensors adapter file. */
  file: Blob;
}

/** The loss and accuracy curves of a run so far. */
export interface RunHistory {
  steps: StepLog[];
  /** Held-out accuracy by step (step 0 is the zero-shot baseline). */
  evaluations: { step: number; accuracy: number }[];
}

/** Images of a run by id, with their labels at the time the run started. */
export interface StoredSplit {
  imageIds: string[];
  labels: number[];
}

/** A run to continue after a reload or a lost GPU: what it was asked, and where it had got to. */
export interface CheckpointRecord {
  /** The run's id: one record per run, deleted when the run ends. */
  runId: string;
  modelId: string;
  modelFingerprint: string;
  classNames: string[];
  support: StoredSplit;
  heldOut: StoredSplit;
  adapter: AdapterChoice;
  training: TrainChoice;
  /** Null until the run posts its first checkpoint: resuming then starts it again. */
  checkpoint: TrainerCheckpoint | null;
  history: RunHistory;
  savedAt: number;
}

export interface StudioSchema extends DBSchema {
  models: { key: string; value: ModelRecord };
  modelFiles: { key: [string, string, number]; value: ModelChunkRecord; indexes: { byModel: string } };
  classes: { key: string; value: ClassRecord };
  datasetSettings: { key: string; value: DatasetSettingsRecord };
  images: { key: string; value: ImageRecord; indexes: { byClass: string } };
  adapters: { key: string; value: AdapterRecord };
  checkpoints: { key: string; value: CheckpointRecord };
  /** The engine's matmul tuning per adapter (keyed by MatmulTuning.adapter), handed back when it opens a device. */
  matmulTunings: { key: string; value: MatmulTuning };
}

type StoreName = StoreNames<StudioSchema>;
export type WriteTransaction<S extends StoreName[]> = IDBPTransaction<StudioSchema, S, 'readwrite'>;

let database: Promise<IDBPDatabase<StudioSchema>> | null = null;

export function studioDatabase(): Promise<IDBPDatabase<StudioSchema>> {
  database ??= openDB<StudioSchema>(DATABASE_NAME, DATABASE_VERSION, {
    upgrade(db, oldVersion) {
      if (oldVersion < 1) {
        db.createObjectStore('models', { keyPath: 'id' });
        db.createObjectStore('modelFiles', { keyPath: ['modelId', 'file', 'index'] }).createIndex('byModel', 'modelId');
        db.createObjectStore('classes', { keyPath: 'id' });
        db.createObjectStore('images', { keyPath: 'id' }).createIndex('byClass', 'classId');
        db.createObjectStore('adapters', { keyPath: 'id' });
        db.createObjectStore('checkpoints', { keyPath: 'runId' });
      }
      // Version 2: the dataset's prompt template (classes gained an optional prompt, which needs no migration).
      if (oldVersion < 2) db.createObjectStore('datasetSettings', { keyPath: 'id' });
      // Version 3: the matmul configurations tuned on this browser's adapters.
      if (oldVersion < 3) db.createObjectStore('matmulTunings', { keyPath: 'adapter' });
    },
    // Another tab upgrading the schema: let it, and open again on the next use.
    blocking() {
      void database?.then((db) => db.close());
      database = null;
    },
  });
  return database;
}

/** The browser refused to store more: nothing of the failed write was kept, everything before it was. */
export class StorageFullError extends Error {
  override name = 'StorageFullError';

  constructor(options?: { cause?: unknown }) {
    super('Browser storage is full: delete adapters or clear the model cache, then try again.', options);
  }
}

function isQuotaError(error: unknown): boolean {
  return (
    error instanceof DOMException &&
    (error.name === 'QuotaExceededError' || error.name === 'NS_ERROR_DOM_QUOTA_REACHED')
  );
}

/**
 * Runs `work` in one readwrite transaction over `stores` and waits until it has committed. If any part
 * fails the whole transaction is rolled back; a full disk becomes a StorageFullError.
 */
export async function write<S extends StoreName[], T>(
  stores: S,
  work: (tx: WriteTransaction<S>) => Promise<T>,
): Promise<T> {
  const db = await studioDatabase();
  const tx = db.transaction(stores, 'readwrite');
  try {
    const [result] = await Promise.all([work(tx), tx.done]);
    return result;
  } catch (error) {
    // The first failure aborts the transaction; tx.done rejects too, and is handled here once.
    tx.done.catch(() => undefined);
    try {
      tx.abort();
    } catch {
      // already finished or aborted
    }
    if (isQuotaError(error) || isQuotaError(tx.error)) throw new StorageFullError({ cause: error });
    throw error;
  }
}
