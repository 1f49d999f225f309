// Downloads a CLIP repo (at a revision, with an access token when it is gated or private) from the Hugging
// Face Hub into the model cache. Each file streams into stored chunks as it arrives; after an interruption
// (a dropped connection, a closed tab, the user's Stop) the next download asks the Hub for the rest with an
// HTTP Range request instead of starting over.

import { MODEL_FILES, PICKLE_WEIGHTS_FILE } from '../common/file-names';
import {
  hubAccessProblem,
  hubFileUrl,
  parseHubModelSpec,
  pickleOnlyProblem,
  type HubModelSpec,
} from '../common/hub-repo';
import { parseShardIndex } from '../common/shard-index';
import type { ModelRecord, StoredFileState } from './db';
import {
  appendModelChunk,
  deleteModel,
  ensureModelRecord,
  forgetIfEmpty,
  isFileComplete,
  restartModelFile,
  setModelFileState,
  setModelRevision,
  storedFile,
} from './models';

/** Bytes gathered in memory before they are stored: what an interruption can lose at most. */
const CHUNK_BYTES = 8 * 1024 * 1024;
const TOKEN_HINT = 'paste a token in the Access token field';

export interface DownloadProgress {
  file: string;
  /** Position of the file among the repo's files (0-based), and how many there are (shards join once the index names them). */
  fileIndex: number;
  fileCount: number;
  /** Bytes of this file stored or received so far. */
  receivedBytes: number;
  /** The file's size, when the Hub said. */
  totalBytes: number | null;
}

/** A download that stopped; `resumable` when trying again continues from the stored bytes. */
export class DownloadError extends Error {
  override name = 'DownloadError';

  constructor(
    message: string,
    readonly resumable: boolean,
  ) {
    super(message);
  }
}

export interface HubDownloadOptions {
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** A Hugging Face access token, for gated and private repos. */
  token?: string;
}

/**
 * Downloads every file of the model `id` ("org/name" or "org/name@revision") that is not completely stored yet:
 * config.json, model.safetensors (or its shard index and every shard), vocab.json, merges.txt and, when the Hub
 * has it, preprocessor_config.json. A refused attempt, or one that stored nothing, leaves no cache entry behind.
 */
export async function downloadHubModel(id: string, options: HubDownloadOptions = {}): Promise<void> {
  const spec = parseHubModelSpec(id);
  if (!spec)
    throw new DownloadError(
      `“${id}” is not a Hugging Face repo id such as openai/clip-vit-base-patch32 (or org/name@revision).`,
      false,
    );
  try {
    await new HubDownload(id, spec, options).run();
  } catch (error) {
    // Nothing to resume after a refusal (no access, no such revision, no usable weights), nor after nothing arrived.
    if (error instanceof DownloadError && !error.resumable) await deleteModel(id);
    else await forgetIfEmpty(id);
    throw error;
  }
}

/** One model's download, pinned to the commit the Hub names first so that a moving branch cannot mix two versions. */
class HubDownload {
  private record!: ModelRecord;
  private at: HubModelSpec;

  constructor(
    private readonly id: string,
    private readonly spec: HubModelSpec,
    private readonly options: HubDownloadOptions,
  ) {
    this.at = spec;
  }

  async run(): Promise<void> {
    const { config, weights, weightsIndex, vocab, merges, preprocessor } = MODEL_FILES;
    this.record = await ensureModelRecord(this.id, 'hub', [config, weights, vocab, merges, preprocessor]);
    if (this.record.revision) this.at = { ...this.spec, revision: this.record.revision };
    await this.require(config);
    if (!(await this.fetch(weights))) {
      this.record = await ensureModelRecord(this.id, 'hub', [weightsIndex]);
      if (!(await this.fetch(weightsIndex))) {
        if (await this.hubHas(PICKLE_WEIGHTS_FILE))
          throw new DownloadError(pickleOnlyProblem(`${this.spec.repo} on the Hugging Face Hub`), false);
        throw new DownloadError(
          `${this.spec.repo} has no ${weights} (nor ${weightsIndex}) on the Hugging Face Hub: is it a CLIP repo in the transformers layout?`,
          false,
        );
      }
      const shards = parseShardIndex(await (await storedFile(this.id, weightsIndex)).text()).shardNames;
      this.record = await ensureModelRecord(this.id, 'hub', shards);
      for (const shard of shards) await this.require(shard);
    }
    await this.require(vocab);
    await this.require(merges);
    await this.fetch(preprocessor);
  }

  private async require(name: string): Promise<void> {
    if (!(await this.fetch(name))) {
      throw new DownloadError(
        `${this.spec.repo} has no ${name} on the Hugging Face Hub at ${this.spec.revision}: is it a CLIP repo in the transformers layout?`,
        false,
      );
    }
  }

  /** Downloads the file unless it is stored; false when the Hub has no such file. */
  private async fetch(name: string): Promise<boolean> {
    const fileIndex = this.record.files.findIndex((f) => f.name === name);
    const state = this.record.files[fileIndex];
    if (isFileComplete(state)) return !state.absent;
    const onProgress = (receivedBytes: number, totalBytes: number | null) =>
      this.options.onProgress?.({
        file: name,
        fileIndex,
        fileCount: this.record.files.length,
        receivedBytes,
        totalBytes,
      });
    return downloadFile(this, state, onProgress);
  }

  /** Whether the Hub has the file, without downloading it. */
  private async hubHas(name: string): Promise<boolean> {
    const response = await this.request(name, { method: 'HEAD' });
    return response.ok;
  }

  async request(name: string, init: RequestInit & { range?: number } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (init.range) headers.range = `bytes=${init.range}-`;
    let response: Response;
    try {
      response = await fetch(hubFileUrl(this.at, name), { method: init.method, signal: this.options.signal, headers });
    } catch (error) {
      if (this.options.signal?.aborted) throw error;
      throw new DownloadError(
        `Could not reach the Hugging Face Hub (${(error as Error).message}). Check the connection and try again.`,
        true,
      );
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new DownloadError(hubAccessProblem(this.spec.repo, response.status, TOKEN_HINT), false);
    }
    if (response.status === 404 && response.headers.get('x-error-code') === 'RevisionNotFound') {
      throw new DownloadError(
        `${this.spec.repo} has no branch, tag or commit “${this.spec.revision}” on the Hugging Face Hub.`,
        false,
      );
    }
    await this.pin(response.headers.get('x-repo-commit'));
    return response;
  }

  /** Later files come from the commit the Hub named (when its CORS headers let the page read it). */
  private async pin(commit: string | null): Promise<void> {
    if (!commit || this.at.revision === commit) return;
    if (this.record.revision && this.record.revision !== commit) {
      throw new DownloadError(
        `${this.spec.repo}@${this.spec.revision} moved to another commit during the download: delete it from the cache and download again.`,
        false,
      );
    }
    this.at = { ...this.spec, revision: commit };
    this.record.revision = commit;
    await setModelRevision(this.id, commit);
  }

  get storeId(): string {
    return this.id;
  }

  get aborted(): boolean {
    return this.options.signal?.aborted ?? false;
  }
}

/** Streams one file into stored chunks, resuming after the stored part; false when the Hub has no such file. */
async function downloadFile(
  download: HubDownload,
  state: StoredFileState,
  onProgress: (received: number, total: number | null) => void,
): Promise<boolean> {
  const { name } = state;
  const id = download.storeId;
  const resumeFrom = state.stored;
  const startOver = async (body?: ReadableStream) => {
    await body?.cancel();
    await restartModelFile(id, name);
    return downloadFile(download, { ...state, size: null, stored: 0, chunks: 0 }, onProgress);
  };
  const response = await download.request(name, { range: resumeFrom });
  if (response.status === 404) {
    await response.body?.cancel();
    await setModelFileState(id, name, { size: 0, absent: true });
    return false;
  }
  // 416: the stored part is not a prefix of the file on the Hub (it changed): start the file over.
  if (response.status === 416 && resumeFrom > 0) return startOver();
  if (!response.ok || !response.body)
    throw new DownloadError(
      `The Hugging Face Hub answered ${response.status} ${response.statusText} for ${name}.`,
      true,
    );

  let offset = resumeFrom;
  const range = contentRange(response);
  if (response.status === 206 && range && range.start !== resumeFrom) return startOver(response.body);
  if (response.status !== 206 && resumeFrom > 0) {
    // The whole file came back instead of the rest: store it from the start.
    await restartModelFile(id, name);
    offset = 0;
  }
  const total = response.status === 206 && range ? range.total : expectedSize(response, offset);
  // Another version of the file than the part stored: start over rather than splice two versions.
  if (offset > 0 && state.size !== null && total !== null && total !== state.size) return startOver(response.body);

  let received = offset;
  let pending: Uint8Array<ArrayBuffer>[] = [];
  let pendingBytes = 0;
  const store = async () => {
    if (pendingBytes === 0) return;
    await appendModelChunk(id, name, new Blob(pending), total);
    pending = [];
    pendingBytes = 0;
  };

  onProgress(received, total);
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pending.push(value);
      pendingBytes += value.length;
      received += value.length;
      onProgress(received, total);
      if (pendingBytes >= CHUNK_BYTES) await store();
    }
  } catch (error) {
    // Keep what arrived: the next try asks only for the rest.
    await store();
    if (download.aborted) throw error;
    throw new DownloadError(interruptedMessage(name, received, total), true);
  }
  await store();
  if (total !== null && received !== total) throw new DownloadError(interruptedMessage(name, received, total), true);
  await setModelFileState(id, name, { size: received });
  return true;
}

/** "bytes 100-199/1000" as numbers; null when absent, or hidden from the page by CORS. */
function contentRange(response: Response): { start: number; total: number } | null {
  const match = /^bytes (\d+)-\d+\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
  return match ? { start: Number(match[1]), total: Number(match[2]) } : null;
}

/**
 * The whole file's size from Content-Length and the bytes already stored; unknown when the body is
 * compressed (Content-Length then counts compressed bytes).
 */
function expectedSize(response: Response, offset: number): number | null {
  const encoding = response.headers.get('content-encoding');
  const length = response.headers.get('content-length');
  if (length === null || (encoding !== null && encoding !== 'identity')) return null;
  return offset + Number(length);
}

function interruptedMessage(file: string, received: number, total: number | null): string {
  const of = total === null ? '' : ` of ${total}`;
  return `The download of ${file} was interrupted after ${received}${of} bytes. The part received is kept: try again to download the rest.`;
}
