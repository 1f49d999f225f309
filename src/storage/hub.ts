// Downloads a CLIP repo from the Hugging Face Hub into the model cache. Each file streams into stored
// chunks as it arrives; after an interruption (a dropped connection, a closed tab, the user's Stop) the
// next download asks the Hub for the rest with an HTTP Range request instead of starting over.

import { MODEL_FILES, REQUIRED_MODEL_FILES } from '../common/file-names';
import { appendModelChunk, ensureModelRecord, isFileComplete, restartModelFile, setModelFileState } from './models';
import type { StoredFileState } from './db';

const HUB_URL = 'https://huggingface.co';
/** Bytes gathered in memory before they are stored: what an interruption can lose at most. */
const CHUNK_BYTES = 8 * 1024 * 1024;
const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

export interface DownloadProgress {
  file: string;
  /** Position of the file among the repo's files (0-based), and how many there are. */
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

function isHubRepoId(id: string): boolean {
  return REPO_ID.test(id);
}

function hubFileUrl(repo: string, file: string): string {
  return `${HUB_URL}/${repo}/resolve/main/${file}`;
}

/** Downloads every file of `repo` that is not completely stored yet. */
export async function downloadHubModel(repo: string, options: { signal?: AbortSignal; onProgress?: (progress: DownloadProgress) => void } = {}): Promise<void> {
  if (!isHubRepoId(repo)) throw new DownloadError(`“${repo}” is not a Hugging Face repo id such as openai/clip-vit-base-patch32.`, false);
  const names = Object.values(MODEL_FILES);
  const record = await ensureModelRecord(repo, 'hub', names);
  for (const [fileIndex, name] of names.entries()) {
    const state = record.files.find((f) => f.name === name)!;
    if (isFileComplete(state)) continue;
    await downloadFile(repo, state, options.signal, (receivedBytes, totalBytes) =>
      options.onProgress?.({ file: name, fileIndex, fileCount: names.length, receivedBytes, totalBytes }),
    );
  }
}

async function downloadFile(repo: string, state: StoredFileState, signal: AbortSignal | undefined, onProgress: (received: number, total: number | null) => void): Promise<void> {
  const { name } = state;
  const resumeFrom = state.stored;
  const startOver = async (body?: ReadableStream) => {
    await body?.cancel();
    await restartModelFile(repo, name);
    return downloadFile(repo, { ...state, size: null, stored: 0, chunks: 0 }, signal, onProgress);
  };
  let response: Response;
  try {
    response = await fetch(hubFileUrl(repo, name), { signal, headers: resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {} });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new DownloadError(`Could not reach the Hugging Face Hub (${(error as Error).message}). Check the connection and try again.`, true);
  }

  if (response.status === 404 || response.status === 401) {
    if (!REQUIRED_MODEL_FILES.includes(name)) {
      await setModelFileState(repo, name, { size: 0, absent: true });
      return;
    }
    throw new DownloadError(`${repo} has no ${name} on the Hugging Face Hub: is it a public CLIP repo in the transformers layout?`, false);
  }
  // 416: the stored part is not a prefix of the file on the Hub (it changed): start the file over.
  if (response.status === 416 && resumeFrom > 0) return startOver();
  if (!response.ok || !response.body) throw new DownloadError(`The Hugging Face Hub answered ${response.status} ${response.statusText} for ${name}.`, true);

  let offset = resumeFrom;
  const range = contentRange(response);
  if (response.status === 206 && range && range.start !== resumeFrom) return startOver(response.body);
  if (response.status !== 206 && resumeFrom > 0) {
    // The whole file came back instead of the rest: store it from the start.
    await restartModelFile(repo, name);
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
    await appendModelChunk(repo, name, new Blob(pending), total);
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
    if (signal?.aborted) throw error;
    throw new DownloadError(interruptedMessage(name, received, total), true);
  }
  await store();
  if (total !== null && received !== total) throw new DownloadError(interruptedMessage(name, received, total), true);
  await setModelFileState(repo, name, { size: received });
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
