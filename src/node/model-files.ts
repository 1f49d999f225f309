// A CLIP model's files for Node: a local directory in the Hub's layout, or a Hub repo id ("org/name" or
// "org/name@revision") resolved through the standard Hugging Face cache, as huggingface_hub lays it out:
// models--org--name/{blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>, refs/<revision>}. A model
// Python downloaded loads without a connection; one octoclip downloads loads in Python. An interrupted
// download resumes from blobs/<etag>.incomplete. Weights stay on disk and stream to the GPU.

import { createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, open, readFile, readlink, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { ClipModelFiles } from '../model/clip';
import { MODEL_FILES, PICKLE_WEIGHTS_FILE, REQUIRED_TEXT_FILES } from '../common/file-names';
import {
  HUB_URL,
  formatHubModelSpec,
  hubAccessProblem,
  hubFileUrl,
  isCommitHash,
  parseHubModelSpec,
  pickleOnlyProblem,
  type HubModelSpec,
} from '../common/hub-repo';
import { ModelFileError } from '../model/safetensors';
import { readShardIndex, type ByteSource, type WeightFiles } from '../model/weights';

const TOKEN_HINT = 'set HF_TOKEN (or log in with `hf auth login`)';

export async function fileByteSource(path: string): Promise<ByteSource> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    name: path,
    size,
    async read(offset, length) {
      const buffer = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
        if (bytesRead === 0)
          throw new ModelFileError(`ended at byte ${offset + done}, expected ${offset + length}`, path);
        done += bytesRead;
      }
      return buffer;
    },
    close: () => handle.close(),
  };
}

/** Opens a model directory, or a Hub repo id ("org/name[@revision]") from the Hugging Face cache, downloading what it lacks. */
export async function openModel(model: string, log: (line: string) => void = () => {}): Promise<ClipModelFiles> {
  if (existsSync(model)) return openModelDirectory(model, model);
  const spec = parseHubModelSpec(model);
  if (!spec) {
    throw new ModelFileError(
      'is neither a directory nor a Hugging Face repo id like openai/clip-vit-base-patch32 (or org/name@revision)',
      model,
    );
  }
  const { dir, commit } = await snapshotFromHub(spec, log);
  return { ...(await openModelDirectory(dir, formatHubModelSpec(spec))), revision: commit };
}

async function openModelDirectory(dir: string, id: string): Promise<ClipModelFiles> {
  if (!statSync(dir).isDirectory())
    throw new ModelFileError('is not a directory with config.json, model.safetensors, vocab.json and merges.txt', dir);
  const has = (file: string) => existsSync(join(dir, file));
  for (const file of REQUIRED_TEXT_FILES) {
    if (!has(file))
      throw new ModelFileError(
        `has no ${file}: a CLIP model directory holds ${[...REQUIRED_TEXT_FILES, MODEL_FILES.weights].join(', ')}`,
        dir,
      );
  }
  const text = (file: string) => readFile(join(dir, file), 'utf8');
  return {
    id,
    config: await text(MODEL_FILES.config),
    weights: await openWeights(dir),
    vocab: await text(MODEL_FILES.vocab),
    merges: await text(MODEL_FILES.merges),
    preprocessor: has(MODEL_FILES.preprocessor) ? await text(MODEL_FILES.preprocessor) : undefined,
  };
}

/** model.safetensors, or the index and every shard it names; a pickle checkpoint alone is refused. */
async function openWeights(dir: string): Promise<WeightFiles> {
  if (existsSync(join(dir, MODEL_FILES.weights))) return fileByteSource(join(dir, MODEL_FILES.weights));
  if (existsSync(join(dir, MODEL_FILES.weightsIndex))) {
    const index = await readFile(join(dir, MODEL_FILES.weightsIndex), 'utf8');
    const names = readShardIndex(index).shardNames;
    const missing = names.filter((name) => !existsSync(join(dir, name)));
    if (missing.length)
      throw new ModelFileError(`lacks ${missing.join(', ')}, named by ${MODEL_FILES.weightsIndex}`, dir);
    return { index, shards: await Promise.all(names.map((name) => fileByteSource(join(dir, name)))) };
  }
  if (existsSync(join(dir, PICKLE_WEIGHTS_FILE))) throw new ModelFileError(pickleOnlyProblem(dir));
  throw new ModelFileError(`has no ${MODEL_FILES.weights} (nor ${MODEL_FILES.weightsIndex} with its shards)`, dir);
}

// ---- the Hugging Face cache -----------------------------------------------------------------

/** HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (XDG_CACHE_HOME moves ~/.cache), as huggingface_hub resolves it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return join(hfHome(env), 'hub');
}

/**
 * octoclip's own cache (the matmul configuration tuned per adapter): `octoclip` in HF_ASSETS_CACHE, else in
 * $HF_HOME/assets, where huggingface_hub keeps the files of libraries built on the Hub, beside the models.
 */
export function octoclipCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.HF_ASSETS_CACHE ?? join(hfHome(env), 'assets'), 'octoclip');
}

function hfHome(env: NodeJS.ProcessEnv): string {
  return env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
}

/** HF_TOKEN, else the token `hf auth login` saved. */
async function hubToken(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (env.HF_TOKEN) return env.HF_TOKEN;
  const saved = join(hfHome(env), 'token');
  return existsSync(saved) ? (await readFile(saved, 'utf8')).trim() || undefined : undefined;
}

export function repoCacheDir(repo: string, cache = hubCacheDir()): string {
  return join(cache, `models--${repo.replace('/', '--')}`);
}

/** The commit a revision points to in the cache: the revision itself when it is a commit hash, else refs/<revision>. */
async function cachedCommit(repoDir: string, revision: string): Promise<string | null> {
  if (isCommitHash(revision)) return revision;
  const ref = join(repoDir, 'refs', revision);
  return existsSync(ref) ? (await readFile(ref, 'utf8')).trim() : null;
}

/** True when the snapshot holds everything octoclip reads (a missing preprocessor only when the Hub has none). */
async function snapshotComplete(repoDir: string, commit: string): Promise<boolean> {
  const snapshot = join(repoDir, 'snapshots', commit);
  const has = (file: string) => existsSync(join(snapshot, file));
  if (!REQUIRED_TEXT_FILES.every(has)) return false;
  if (!has(MODEL_FILES.preprocessor) && !existsSync(join(repoDir, '.no_exist', commit, MODEL_FILES.preprocessor)))
    return false;
  if (has(MODEL_FILES.weights)) return true;
  if (!has(MODEL_FILES.weightsIndex)) return false;
  return readShardIndex(await readFile(join(snapshot, MODEL_FILES.weightsIndex), 'utf8')).shardNames.every(has);
}

/** The snapshot folder of the revision, from the cache when complete, else downloading what it lacks. */
async function snapshotFromHub(
  spec: HubModelSpec,
  log: (line: string) => void,
): Promise<{ dir: string; commit: string }> {
  const repoDir = repoCacheDir(spec.repo);
  const known = await cachedCommit(repoDir, spec.revision);
  if (known && (await snapshotComplete(repoDir, known)))
    return { dir: join(repoDir, 'snapshots', known), commit: known };

  const hub = new HubDownloader(spec, repoDir, await hubToken(), log);
  for (const file of REQUIRED_TEXT_FILES) await hub.require(file);
  if (!(await hub.optional(MODEL_FILES.weights))) {
    if (await hub.optional(MODEL_FILES.weightsIndex)) {
      const index = await readFile(join(hub.snapshotDir(), MODEL_FILES.weightsIndex), 'utf8');
      for (const shard of readShardIndex(index).shardNames) await hub.require(shard);
    } else if (await hub.exists(PICKLE_WEIGHTS_FILE)) {
      throw new ModelFileError(pickleOnlyProblem(`${spec.repo} on the Hub`));
    } else {
      throw new ModelFileError(
        `has no ${MODEL_FILES.weights} (nor ${MODEL_FILES.weightsIndex}) on the Hub: is it a CLIP repo in the transformers layout?`,
        spec.repo,
      );
    }
  }
  await hub.optional(MODEL_FILES.preprocessor);
  return { dir: hub.snapshotDir(), commit: hub.commit() };
}

interface HubFileHead {
  status: number;
  commit: string | null;
  etag: string | null;
  /** Where to GET the bytes (the CDN for large files). */
  url: string;
  errorCode: string | null;
}

/** Downloads files of one revision into the cache, pinning the commit the first answer names. */
class HubDownloader {
  private pinnedCommit: string | null = null;
  private readonly endpoint = process.env.HF_ENDPOINT ?? HUB_URL;

  constructor(
    private readonly spec: HubModelSpec,
    private readonly repoDir: string,
    private readonly token: string | undefined,
    private readonly log: (line: string) => void,
  ) {}

  commit(): string {
    if (!this.pinnedCommit) throw new Error('no file downloaded yet');
    return this.pinnedCommit;
  }

  snapshotDir(): string {
    return join(this.repoDir, 'snapshots', this.commit());
  }

  async require(file: string): Promise<void> {
    if (!(await this.optional(file))) {
      throw new ModelFileError(
        `has no ${file} at revision ${this.spec.revision} on the Hub: is it a CLIP repo in the transformers layout?`,
        this.spec.repo,
      );
    }
  }

  async exists(file: string): Promise<boolean> {
    return (await this.head(file)).status === 200;
  }

  /** Downloads the file into the snapshot unless it is there; false when the Hub has no such file. */
  async optional(file: string): Promise<boolean> {
    const head = await this.head(file);
    if (head.status === 404) {
      if (head.errorCode === 'RevisionNotFound') {
        throw new ModelFileError(
          `has no branch, tag or commit ${JSON.stringify(this.spec.revision)} on the Hub`,
          this.spec.repo,
        );
      }
      if (head.errorCode === 'RepoNotFound')
        throw new ModelFileError('is not a repo on the Hugging Face Hub', this.spec.repo);
      if (head.commit) {
        await this.pin(head.commit);
        // Remembered as huggingface_hub does, so the next run knows the Hub has no such file.
        await mkdir(join(this.repoDir, '.no_exist', head.commit), { recursive: true });
        await writeFile(join(this.repoDir, '.no_exist', head.commit, file), '');
      }
      return false;
    }
    if (head.status === 401 || head.status === 403)
      throw new ModelFileError(hubAccessProblem(this.spec.repo, head.status, TOKEN_HINT));
    if (head.status !== 200 || !head.commit || !head.etag) {
      throw new ModelFileError(
        `the Hub answered ${head.status} for ${file}${head.status === 200 ? ' without its commit and ETag' : ''}`,
        this.spec.repo,
      );
    }
    await this.pin(head.commit);
    const pointer = join(this.snapshotDir(), file);
    if (existsSync(pointer)) return true;
    const blob = join(this.repoDir, 'blobs', head.etag);
    if (!existsSync(blob)) await this.download(file, head, blob);
    await mkdir(dirname(pointer), { recursive: true });
    await symlink(relative(dirname(pointer), blob), pointer).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST' || (await readlink(pointer)) !== relative(dirname(pointer), blob)) throw error;
    });
    return true;
  }

  /** The first answer fixes the commit, so a branch that moves mid-download cannot mix two versions. */
  private async pin(commit: string): Promise<void> {
    if (this.pinnedCommit === null) {
      this.pinnedCommit = commit;
      if (this.spec.revision !== commit) {
        const ref = join(this.repoDir, 'refs', this.spec.revision);
        await mkdir(dirname(ref), { recursive: true });
        await writeFile(ref, commit);
      }
    } else if (this.pinnedCommit !== commit) {
      throw new ModelFileError(
        `${this.spec.revision} moved to commit ${commit} during the download (was ${this.pinnedCommit}): run again`,
        this.spec.repo,
      );
    }
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  /** HEAD without following redirects to another host: the Hub's own answer carries the commit and the blob's ETag. */
  private async head(file: string): Promise<HubFileHead> {
    const pinned = this.pinnedCommit ? { ...this.spec, revision: this.pinnedCommit } : this.spec;
    let url = hubFileUrl(pinned, file, this.endpoint);
    for (let redirects = 0; ; redirects++) {
      let response: Response;
      try {
        response = await fetch(url, { method: 'HEAD', redirect: 'manual', headers: this.headers() });
      } catch (error) {
        throw new ModelFileError(
          `could not reach the Hugging Face Hub (${(error as Error).message}). Pass a local model directory, or retry when online.`,
          this.spec.repo,
        );
      }
      const location = response.headers.get('location');
      const sameHost = location !== null && new URL(location, url).host === new URL(url).host;
      if (response.status >= 300 && response.status < 400 && location && sameHost && redirects < 5) {
        url = new URL(location, url).href; // a renamed repo
        continue;
      }
      const etag = response.headers.get('x-linked-etag') ?? response.headers.get('etag');
      return {
        status: response.status >= 300 && response.status < 400 ? 200 : response.status,
        commit: response.headers.get('x-repo-commit'),
        etag: etag ? etag.replace(/^W\//, '').replaceAll('"', '') : null,
        url: location ? new URL(location, url).href : url,
        errorCode: response.headers.get('x-error-code'),
      };
    }
  }

  /** Streams into blobs/<etag>.incomplete, resuming what is there, then renames it into place. */
  private async download(file: string, head: HubFileHead, blob: string): Promise<void> {
    await mkdir(dirname(blob), { recursive: true });
    const partial = `${blob}.incomplete`;
    const have = existsSync(partial) ? (await stat(partial)).size : 0;
    const crossHost = new URL(head.url).host !== new URL(this.endpoint).host;
    let response: Response;
    try {
      // The token goes to the Hub only, never to the CDN it redirects to.
      response = await fetch(head.url, {
        headers: crossHost
          ? have
            ? { range: `bytes=${have}-` }
            : {}
          : this.headers(have ? { range: `bytes=${have}-` } : {}),
      });
    } catch (error) {
      throw new ModelFileError(
        `could not reach the Hugging Face Hub (${(error as Error).message}). Run again to resume.`,
        this.spec.repo,
      );
    }
    if (!response.ok || !response.body)
      throw new ModelFileError(`download of ${file} failed: HTTP ${response.status}`, this.spec.repo);
    const resumed = response.status === 206;
    const total = Number(response.headers.get('content-length') ?? 0) + (resumed ? have : 0);
    this.log(
      `downloading ${this.spec.repo}/${file}${resumed ? ` (resuming at ${have} bytes)` : ''} into ${this.repoDir}`,
    );
    const out = createWriteStream(partial, { flags: resumed ? 'a' : 'w' });
    let received = resumed ? have : 0;
    let lastReport = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      received += chunk.length;
      if (total && received - lastReport > total / 20) {
        lastReport = received;
        this.log(`  ${file}: ${((100 * received) / total).toFixed(0)}% of ${(total / 1e6).toFixed(1)} MB`);
      }
    }
    await new Promise<void>((resolve, reject) =>
      out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
    if (total && received !== total) {
      throw new ModelFileError(
        `download of ${file} incomplete: ${received} of ${total} bytes. Run again to resume.`,
        this.spec.repo,
      );
    }
    await rename(partial, blob);
  }
}
