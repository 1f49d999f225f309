// The model: what the model cache holds, which model the engine has loaded, and the download or load
// in progress. Hub downloads and local files both land in the cache (IndexedDB); loading hands the
// cached Blobs to the engine, which streams the weights to the GPU.

import { create } from 'zustand';
import { StorageFullError, type ModelRecord } from '../../storage/db';
import { DownloadError, downloadHubModel, type DownloadProgress } from '../../storage/hub';
import { MODEL_FILES, PICKLE_WEIGHTS_FILE, REQUIRED_TEXT_FILES } from '../../common/file-names';
import { pickleOnlyProblem } from '../../common/hub-repo';
import { parseShardIndex } from '../../common/shard-index';
import {
  clearModelCache,
  deleteModel,
  isModelComplete,
  listModels,
  markModelLoaded,
  modelFileBlobs,
  saveLocalModel,
  storedBytes,
} from '../../storage/models';
import type { LoadedModel, ModelFileBlobs, SuggestedModel } from '../../worker/protocol';
import { RateMeter } from '../rate';
import { errorMessage, useEngineStore } from './engine';

export { DEFAULT_HUB_MODEL } from '../../common/hub-repo';

/** The access token for gated and private repos: kept in this browser's localStorage only, sent only to the Hub. */
const HUB_TOKEN_KEY = 'octoclip.hub-token';

function storedHubToken(): string {
  try {
    return localStorage.getItem(HUB_TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export interface CachedModel {
  record: ModelRecord;
  complete: boolean;
  bytes: number;
}

export type ModelActivity =
  | { kind: 'idle' }
  | {
      kind: 'downloading';
      repo: string;
      progress: DownloadProgress | null;
      bytesPerSecond: number | null;
      secondsLeft: number | null;
    }
  | { kind: 'loading'; id: string; loadedBytes: number; totalBytes: number };

export interface ModelProblem {
  message: string;
  /** A Hub download that can continue from the bytes stored. */
  resumableRepo?: string;
}

export interface ModelState {
  cached: CachedModel[];
  loaded: LoadedModel | null;
  /** The model that was loaded when the device was lost: it is loaded again after a reconnect. */
  lostModelId: string | null;
  activity: ModelActivity;
  problem: ModelProblem | null;
  /** The Hub checkpoints the Model screen offers, with download size and planned training memory (from the engine); null until it answers. */
  suggested: SuggestedModel[] | null;
  /** Asks the engine for `suggested` once. */
  loadSuggested(): Promise<void>;
  /** The Hugging Face access token ('' for none). */
  hubToken: string;
  setHubToken(token: string): void;
  /** Refreshes the cache listing; then loads the model used last, if it is complete (a second visit works offline). */
  restore(): Promise<void>;
  refresh(): Promise<void>;
  /** Downloads (or finishes downloading) a Hub repo ("org/name" or "org/name@revision") into the cache, then loads it. */
  download(repo: string): Promise<void>;
  /** Stops the download; what arrived is kept. */
  stopDownload(): void;
  loadCached(id: string): Promise<boolean>;
  /** True once `id` is the loaded model: loads it from the cache unless it is loaded or loading already. */
  ensureLoaded(id: string): Promise<boolean>;
  /** Loads files the user gave; stored in the cache only once they load. */
  loadLocal(name: string, files: readonly File[]): Promise<void>;
  deleteCached(id: string): Promise<void>;
  clearCache(): Promise<void>;
  dismissProblem(): void;
}

/** Progress updates at most this often: a fast download delivers hundreds of pieces a second. */
const PROGRESS_INTERVAL_MS = 100;

export const useModelStore = create<ModelState>()((set, get) => {
  let abort: AbortController | null = null;
  let loading: { id: string; done: Promise<boolean> } | null = null;
  const engine = () => useEngineStore.getState();

  async function load(id: string, files: ModelFileBlobs, revision?: string): Promise<LoadedModel | null> {
    const { weights } = files;
    const totalBytes =
      weights instanceof Blob ? weights.size : weights.shards.reduce((sum, shard) => sum + shard.blob.size, 0);
    set({ activity: { kind: 'loading', id, loadedBytes: 0, totalBytes }, problem: null });
    const stopListening = engine().listen((event) => {
      if (event.type === 'model-progress')
        set({ activity: { kind: 'loading', id, loadedBytes: event.loadedBytes, totalBytes: event.totalBytes } });
    });
    try {
      const loaded = await engine().request('loadModel', { id, revision, files });
      set({ loaded, lostModelId: null, activity: { kind: 'idle' } });
      return loaded;
    } catch (error) {
      // The engine keeps the model it had: only the problem is new.
      set({ activity: { kind: 'idle' }, problem: { message: errorMessage(error) } });
      return null;
    } finally {
      stopListening();
    }
  }

  // A run in another precision loads the same model's weights again: the same model, held otherwise.
  engine().listen((event) => {
    if (event.type === 'model-reloaded') set({ loaded: event.model });
  });

  // A lost device (or a failed worker) takes the model with it; once the engine is ready again, the
  // same model comes back from the cache.
  useEngineStore.subscribe(({ connection }, previous) => {
    if (connection.phase === previous.connection.phase) return;
    const { loaded, lostModelId, activity } = get();
    if (loaded && (connection.phase === 'lost' || connection.phase === 'failed'))
      set({ loaded: null, lostModelId: loaded.id });
    if (connection.phase === 'ready' && lostModelId && activity.kind === 'idle') void get().loadCached(lostModelId);
  });

  return {
    cached: [],
    loaded: null,
    lostModelId: null,
    activity: { kind: 'idle' },
    problem: null,
    suggested: null,
    hubToken: storedHubToken(),

    async loadSuggested() {
      if (get().suggested) return;
      try {
        set({ suggested: await engine().request('suggestedModels') });
      } catch {
        // The engine failed to start: the connection banner says why, and the Repository field still works.
      }
    },

    setHubToken(token) {
      const trimmed = token.trim();
      try {
        if (trimmed) localStorage.setItem(HUB_TOKEN_KEY, trimmed);
        else localStorage.removeItem(HUB_TOKEN_KEY);
      } catch {
        // Storage refused (private mode): the token still serves this visit.
      }
      set({ hubToken: trimmed });
    },

    async restore() {
      await get().refresh();
      const last = get().cached.find((model) => model.complete && model.record.lastLoadedAt !== undefined);
      if (!last || get().loaded || get().activity.kind !== 'idle') return;
      await engine().connect();
      if (engine().connection.phase === 'ready') await get().loadCached(last.record.id);
    },

    async refresh() {
      const records = await listModels();
      set({
        cached: records.map((record) => ({ record, complete: isModelComplete(record), bytes: storedBytes(record) })),
      });
    },

    async download(repo) {
      if (get().activity.kind !== 'idle') return;
      // Asks the browser not to evict the cache when the disk fills up (it may decline, or ask the user).
      void navigator.storage?.persist?.();
      abort = new AbortController();
      const meter = new RateMeter();
      let lastUpdate = 0;
      let currentFile = '';
      set({
        activity: { kind: 'downloading', repo, progress: null, bytesPerSecond: null, secondsLeft: null },
        problem: null,
      });
      try {
        await downloadHubModel(repo, {
          signal: abort.signal,
          token: get().hubToken || undefined,
          onProgress(progress) {
            if (progress.file !== currentFile) {
              currentFile = progress.file;
              meter.reset();
              void get().refresh(); // the cache lists the model as partly downloaded from now on
            }
            meter.add(progress.receivedBytes);
            const now = performance.now();
            const fileDone = progress.receivedBytes === progress.totalBytes;
            if (now - lastUpdate < PROGRESS_INTERVAL_MS && !fileDone) return;
            lastUpdate = now;
            const secondsLeft = progress.totalBytes === null ? null : meter.secondsUntil(progress.totalBytes);
            set({ activity: { kind: 'downloading', repo, progress, bytesPerSecond: meter.perSecond(), secondsLeft } });
          },
        });
      } catch (error) {
        const stopped = abort.signal.aborted;
        set({
          activity: { kind: 'idle' },
          problem: stopped
            ? { message: `Download of ${repo} stopped. The part received is kept.`, resumableRepo: repo }
            : {
                message: errorMessage(error),
                resumableRepo: error instanceof DownloadError && error.resumable ? repo : undefined,
              },
        });
        await get().refresh();
        return;
      } finally {
        abort = null;
      }
      set({ activity: { kind: 'idle' } });
      await get().refresh();
      await get().loadCached(repo);
    },

    stopDownload() {
      abort?.abort();
    },

    async loadCached(id) {
      if (get().activity.kind !== 'idle') return false;
      const done = (async () => {
        let files: ModelFileBlobs;
        try {
          files = await modelFileBlobs(id);
        } catch (error) {
          set({ problem: { message: errorMessage(error) } });
          return false;
        }
        const revision = get().cached.find((model) => model.record.id === id)?.record.revision;
        const loaded = await load(id, files, revision);
        if (loaded) {
          await markModelLoaded(id, loaded.fingerprint);
          await get().refresh();
        }
        return loaded !== null;
      })();
      loading = { id, done };
      try {
        return await done;
      } finally {
        loading = null;
      }
    },

    async ensureLoaded(id) {
      if (get().loaded?.id === id) return true;
      if (loading?.id === id) return loading.done;
      return get().loadCached(id);
    },

    async loadLocal(name, files) {
      if (get().activity.kind !== 'idle') return;
      const byName = new Map(files.map((file) => [file.name, file as Blob]));
      let blobs: ModelFileBlobs;
      let kept: string[];
      try {
        const weights = await localWeights(byName);
        blobs = {
          config: byName.get(MODEL_FILES.config)!,
          weights: weights.blobs,
          vocab: byName.get(MODEL_FILES.vocab)!,
          merges: byName.get(MODEL_FILES.merges)!,
          preprocessor: byName.get(MODEL_FILES.preprocessor),
        };
        kept = [...REQUIRED_TEXT_FILES, MODEL_FILES.preprocessor, ...weights.names];
      } catch (error) {
        set({ problem: { message: errorMessage(error) } });
        return;
      }
      const id = `local/${name.trim() || 'clip'}`;
      const loaded = await load(id, blobs);
      if (!loaded) return;
      try {
        await saveLocalModel(id, new Map([...byName].filter(([file]) => kept.includes(file))));
        await markModelLoaded(id, loaded.fingerprint);
      } catch (error) {
        const reason = error instanceof StorageFullError ? error.message : errorMessage(error);
        set({ problem: { message: `The model is loaded, but it could not be kept for the next visit. ${reason}` } });
      }
      await get().refresh();
    },

    async deleteCached(id) {
      await deleteModel(id);
      await get().refresh();
    },

    async clearCache() {
      abort?.abort();
      await clearModelCache();
      await get().refresh();
    },

    dismissProblem() {
      set({ problem: null });
    },
  };
});

/**
 * The weights among files the user gave: model.safetensors, or the shard index and every shard it names. Refuses
 * a missing text file, a missing shard, and a pickle checkpoint alone, saying what to give instead.
 */
async function localWeights(byName: Map<string, Blob>): Promise<{ blobs: ModelFileBlobs['weights']; names: string[] }> {
  const missing = REQUIRED_TEXT_FILES.filter((file) => !byName.has(file));
  const single = byName.get(MODEL_FILES.weights);
  const index = byName.get(MODEL_FILES.weightsIndex);
  if (!single && !index) {
    if (byName.has(PICKLE_WEIGHTS_FILE)) throw new Error(pickleOnlyProblem('This model'));
    missing.push(MODEL_FILES.weights);
  }
  if (missing.length) {
    throw new Error(
      `Missing ${missing.join(', ')}: a CLIP model needs ${[...REQUIRED_TEXT_FILES, MODEL_FILES.weights].join(', ')} ` +
        `(or ${MODEL_FILES.weightsIndex} with its shards, and optionally ${MODEL_FILES.preprocessor}).`,
    );
  }
  if (single) return { blobs: single, names: [MODEL_FILES.weights] };
  const shardNames = parseShardIndex(await index!.text()).shardNames;
  const absent = shardNames.filter((shard) => !byName.has(shard));
  if (absent.length)
    throw new Error(
      `Missing ${absent.join(', ')}: ${MODEL_FILES.weightsIndex} names ${shardNames.length} shards; give them all.`,
    );
  return {
    blobs: { index: index!, shards: shardNames.map((shard) => ({ name: shard, blob: byName.get(shard)! })) },
    names: [MODEL_FILES.weightsIndex, ...shardNames],
  };
}
