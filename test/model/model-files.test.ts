// Model files as the Hub has them: a checkpoint in shards (in memory, in a folder, on the Hub), a truncated
// file, a pickle-only repo, and the Hugging Face cache: revision-pinned layouts written as huggingface_hub
// writes them, a stand-in Hub server (with a CDN on another host, tokens and gated repos), and offline reuse.

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { adapterMetadata } from '../../src/adapters/adapter-file';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { ClipModel } from '../../src/model/clip';
import { makeTinyClip } from '../../src/model/tiny';
import { MODEL_FILES } from '../../src/common/file-names';
import { byteSourceFromBytes, isSharded } from '../../src/model/weights';
import { hubCacheDir, openModel, repoCacheDir } from '../../src/node/model-files';
import { useGpu } from '../helpers/gpu';
import { shardCheckpoint } from '../helpers/shards';

const ctx = await useGpu();
const work = mkdtempSync(join(tmpdir(), 'octoclip-model-files-'));
const tiny = Object.fromEntries(
  Object.entries(makeTinyClip().files).map(([name, file]) => [
    name,
    Buffer.from(typeof file === 'string' ? new TextEncoder().encode(file) : file),
  ]),
) as Record<string, Buffer>;
const TEXT_FILES = ['config.json', 'vocab.json', 'merges.txt', 'preprocessor_config.json'];

/** The tiny checkpoint in two shards and their index. */
function shardFiles(): Record<string, Buffer> {
  return Object.fromEntries(
    Object.entries(shardCheckpoint(tiny['model.safetensors'])).map(([name, bytes]) => [name, Buffer.from(bytes)]),
  );
}

function writeFolder(name: string, files: Record<string, Buffer>): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, bytes] of Object.entries(files)) writeFileSync(join(dir, file), bytes);
  return dir;
}

/** Opens a model's files only to read what openModel resolved, closing the weight files again. */
async function resolveModel(model: string) {
  const files = await openModel(model);
  await Promise.all(
    (isSharded(files.weights) ? files.weights.shards : [files.weights]).map((source) => source.close?.()),
  );
  return files;
}

const textFiles = () => Object.fromEntries(TEXT_FILES.map((name) => [name, tiny[name]]));

async function imageFeatures(model: ClipModel): Promise<Float32Array> {
  const size = model.config.vision.imageSize;
  const pixels = ctx.tensor(
    [1, 3, size, size],
    'pixels',
    new Float32Array(3 * size * size).map((_, i) => Math.sin(i)),
  );
  return ctx.read(model.imageFeatures(pixels, 1));
}

const singleFile = await ClipModel.load(
  ctx,
  await openModel(writeFolder('single', { ...textFiles(), 'model.safetensors': tiny['model.safetensors'] })),
);
const singleFeatures = await imageFeatures(singleFile);

describe('checkpoints in shards', () => {
  it('loads model.safetensors.index.json and its shards from a folder, to the same weights', async () => {
    const model = await ClipModel.load(
      ctx,
      await openModel(writeFolder('sharded', { ...textFiles(), ...shardFiles() })),
    );
    expect(model.weights.fingerprint).toBe(singleFile.weights.fingerprint);
    expect(await imageFeatures(model)).toEqual(singleFeatures);
    model.destroy();
  });

  it('refuses a missing shard, an index that points outside the folder, and a shard without its tensors', async () => {
    const files = shardFiles();
    const load = (index: string, shards: [string, Buffer][]) =>
      ClipModel.load(ctx, {
        id: 'sharded',
        config: tiny['config.json'].toString(),
        vocab: tiny['vocab.json'].toString(),
        merges: tiny['merges.txt'].toString(),
        weights: { index, shards: shards.map(([name, bytes]) => byteSourceFromBytes(name, bytes)) },
      });
    const index = files[MODEL_FILES.weightsIndex].toString();
    const [first, second] = Object.keys(files).filter((name) => name !== MODEL_FILES.weightsIndex);
    await expect(load(index, [[first, files[first]]])).rejects.toThrow(
      `${MODEL_FILES.weightsIndex}: names the shard ${second}, which is missing: give every file the index lists (${first}, ${second})`,
    );
    const outside = JSON.stringify({ weight_map: { logit_scale: '../elsewhere.safetensors' } });
    await expect(load(outside, [])).rejects.toThrow(
      'weight_map places logit_scale in "../elsewhere.safetensors", which is not a .safetensors file name in the same folder',
    );
    const swapped = index.replaceAll(first, 'x').replaceAll(second, first).replaceAll('x', second);
    await expect(
      load(swapped, [
        [first, files[first]],
        [second, files[second]],
      ]),
    ).rejects.toThrow(`, which ${MODEL_FILES.weightsIndex} places there`);
    await expect(
      openModel(
        writeFolder('shard-missing', {
          ...textFiles(),
          [MODEL_FILES.weightsIndex]: files[MODEL_FILES.weightsIndex],
          [first]: files[first],
        }),
      ),
    ).rejects.toThrow(`lacks ${second}, named by ${MODEL_FILES.weightsIndex}`);
  });
});

describe('refused model folders', () => {
  it('says a truncated model.safetensors is incomplete, with how many bytes of how many', async () => {
    const whole = tiny['model.safetensors'];
    const cut = whole.subarray(0, 100_000);
    const dir = writeFolder('truncated', { ...textFiles(), 'model.safetensors': cut });
    await expect(ClipModel.load(ctx, await openModel(dir))).rejects.toThrow(
      `model.safetensors: incomplete: 100000 of ${whole.length} bytes (the file was cut short: download or copy it again)`,
    );
  });

  it('refuses a folder with only pytorch_model.bin, saying how to get a safetensors file', async () => {
    const dir = writeFolder('pickle', { ...textFiles(), 'pytorch_model.bin': Buffer.from('PK\u0003\u0004 pickle') });
    await expect(openModel(dir)).rejects.toThrow(
      /has only pytorch_model\.bin, a pickle file, which octoclip never loads .*org\/name@refs\/pr\/N.*save_pretrained\(out, safe_serialization=True\)/,
    );
  });
});

// ---- the Hugging Face cache and a stand-in Hub ------------------------------------------------

interface FakeRepo {
  files: Record<string, Buffer>;
  /** Branches and tags, to commits. */
  refs: Record<string, string>;
  /** The token it needs (a private or gated repo); `gated` when a valid token still lacks the licence. */
  token?: string;
  gated?: boolean;
}

interface Served {
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const gitSha = (bytes: Buffer) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');

/** Answers as huggingface.co does: X-Repo-Commit and ETag on every file, large files redirected to a CDN host with X-Linked-Etag. */
async function startFakeHub(repos: Record<string, FakeRepo>) {
  const served: Served[] = [];
  const blobs = new Map<string, Buffer>();
  const listen = async (handler: (request: IncomingMessage, response: ServerResponse) => void) => {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  };
  const log = (request: IncomingMessage) =>
    served.push({
      method: request.method!,
      path: request.url!,
      range: request.headers.range ?? null,
      authorization: request.headers.authorization ?? null,
    });
  const send = (request: IncomingMessage, response: ServerResponse, bytes: Buffer, headers: Record<string, string>) => {
    const start = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? '')?.[1] ?? 0);
    const status = request.headers.range ? 206 : 200;
    response.writeHead(status, {
      ...headers,
      'content-length': String(bytes.length - start),
      'accept-ranges': 'bytes',
      ...(status === 206 ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    response.end(request.method === 'HEAD' ? undefined : bytes.subarray(start));
  };
  const cdn = await listen((request, response) => {
    log(request);
    const bytes = blobs.get(request.url!.slice('/blob/'.length));
    if (!bytes) return void response.writeHead(404).end();
    send(request, response, bytes, {});
  });
  const hub = await listen((request, response) => {
    log(request);
    const match = /^\/([\w.-]+\/[\w.-]+)\/resolve\/([^/]+)\/([^/?]+)$/.exec(request.url!);
    const repo = match ? repos[match[1]] : undefined;
    if (!match || !repo) return void response.writeHead(401, { 'x-error-code': 'RepoNotFound' }).end();
    const given = request.headers.authorization;
    if (repo.token && given !== `Bearer ${repo.token}`)
      return void response.writeHead(401, { 'x-error-code': 'GatedRepo' }).end();
    if (repo.gated) return void response.writeHead(403, { 'x-error-code': 'GatedRepo' }).end();
    const revision = decodeURIComponent(match[2]);
    const commit = repo.refs[revision] ?? (Object.values(repo.refs).includes(revision) ? revision : undefined);
    if (!commit) return void response.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
    const bytes = repo.files[match[3]];
    if (!bytes) return void response.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': commit }).end();
    if (match[3].endsWith('.safetensors')) {
      const hash = sha256(bytes);
      blobs.set(hash, bytes);
      response.writeHead(302, {
        location: `${cdn.url}/blob/${hash}`,
        'x-repo-commit': commit,
        'x-linked-etag': `"${hash}"`,
        'x-linked-size': String(bytes.length),
      });
      return void response.end();
    }
    send(request, response, bytes, { 'x-repo-commit': commit, etag: `"${gitSha(bytes)}"` });
  });
  const servers: Server[] = [hub.server, cdn.server];
  return {
    url: hub.url,
    served,
    close: () => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))),
  };
}

const COMMIT_A = 'a'.repeat(40);
const COMMIT_B = 'b'.repeat(40);
const environment = { ...process.env };
const hubs: { close(): Promise<unknown> }[] = [];
afterAll(async () => {
  process.env = environment;
  await Promise.all(hubs.map((hub) => hub.close()));
});

let cache: string;
beforeEach(() => {
  cache = mkdtempSync(join(work, 'hf-cache-'));
  process.env = {
    ...environment,
    HF_HUB_CACHE: cache,
    HF_HOME: join(cache, 'home'),
    HF_ENDPOINT: 'http://127.0.0.1:9',
  };
  delete process.env.HF_TOKEN;
});

async function fakeHub(repos: Record<string, FakeRepo>) {
  const hub = await startFakeHub(repos);
  hubs.push(hub);
  process.env.HF_ENDPOINT = hub.url;
  return hub;
}

const tinyRepo = (extra: Partial<FakeRepo> = {}): FakeRepo => ({
  files: { ...textFiles(), 'model.safetensors': tiny['model.safetensors'] },
  refs: { main: COMMIT_A, v1: COMMIT_B },
  ...extra,
});

describe('the Hugging Face cache', () => {
  it('finds the cache as huggingface_hub does: HF_HUB_CACHE, then HF_HOME/hub, then ~/.cache/huggingface/hub', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' })).toBe('/c');
    expect(hubCacheDir({ HF_HOME: '/h' })).toBe(join('/h', 'hub'));
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' })).toBe(join('/x', 'huggingface', 'hub'));
    expect(repoCacheDir('openai/clip-vit-base-patch32', '/c')).toBe(
      join('/c', 'models--openai--clip-vit-base-patch32'),
    );
  });

  it('downloads a revision into blobs, snapshots and refs as Python does, then loads it again offline', async () => {
    const hub = await fakeHub({ 'org/tiny': tinyRepo() });
    const files = await openModel('org/tiny@v1');
    expect(files.revision).toBe(COMMIT_B);
    expect(files.id).toBe('org/tiny@v1'); // the model as named; the commit is pinned beside it
    const repoDir = repoCacheDir('org/tiny', cache);
    expect(readFileSync(join(repoDir, 'refs', 'v1'), 'utf8')).toBe(COMMIT_B);
    const weights = join(repoDir, 'snapshots', COMMIT_B, 'model.safetensors');
    expect(lstatSync(weights).isSymbolicLink()).toBe(true);
    expect(readlinkSync(weights)).toBe(join('..', '..', 'blobs', sha256(tiny['model.safetensors'])));
    expect(readlinkSync(join(repoDir, 'snapshots', COMMIT_B, 'config.json'))).toBe(
      join('..', '..', 'blobs', gitSha(tiny['config.json'])),
    );
    expect(readFileSync(weights).equals(tiny['model.safetensors'])).toBe(true);
    // The weights came from the CDN host; after the first answer the Hub was asked for the pinned commit.
    expect(hub.served.filter((s) => s.path.startsWith('/blob/')).map((s) => s.method)).toEqual(['GET']);
    expect(hub.served.some((s) => s.path.includes(`/resolve/${COMMIT_B}/`))).toBe(true);
    const model = await ClipModel.load(ctx, files);
    expect(model.revision).toBe(COMMIT_B);
    // An adapter trained on it pins the commit beside the model's name.
    const meta = adapterMetadata(
      defaultAdapterSettings(model.config),
      { template: 'a photo of a {}.', classPrompts: {} },
      model,
      ['cat', 'dog'],
      { shots: 1 },
      {},
    );
    expect([meta.baseModel, meta.baseModelRevision]).toEqual(['org/tiny@v1', COMMIT_B]);
    model.destroy();

    const before = hub.served.length;
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9'; // nothing listens: the cache alone must do
    expect((await resolveModel('org/tiny@v1')).revision).toBe(COMMIT_B);
    expect((await resolveModel(`org/tiny@${COMMIT_B}`)).revision).toBe(COMMIT_B);
    expect(hub.served.length).toBe(before);
  });

  it('uses a snapshot Python downloaded, pinned to a commit, without a connection', async () => {
    const repoDir = repoCacheDir('org/python', cache);
    mkdirSync(join(repoDir, 'blobs'), { recursive: true });
    mkdirSync(join(repoDir, 'snapshots', COMMIT_A), { recursive: true });
    mkdirSync(join(repoDir, 'refs'), { recursive: true });
    writeFileSync(join(repoDir, 'refs', 'main'), COMMIT_A);
    for (const [name, bytes] of Object.entries({ ...textFiles(), ...shardFiles() })) {
      writeFileSync(join(repoDir, 'blobs', sha256(bytes)), bytes);
      symlinkSync(join('..', '..', 'blobs', sha256(bytes)), join(repoDir, 'snapshots', COMMIT_A, name));
    }
    const files = await openModel('org/python');
    expect(files.revision).toBe(COMMIT_A);
    const model = await ClipModel.load(ctx, files);
    expect(await imageFeatures(model)).toEqual(singleFeatures);
    model.destroy();
    await expect(openModel(`org/python@${COMMIT_B}`)).rejects.toThrow('could not reach the Hugging Face Hub');
  });

  it('downloads the shards an index names, and resumes a partial blob with a Range request', async () => {
    const shards = shardFiles();
    const hub = await fakeHub({ 'org/sharded': { files: { ...textFiles(), ...shards }, refs: { main: COMMIT_A } } });
    const first = Object.keys(shards).find((name) => name.endsWith('1-of-00002.safetensors'))!;
    const blob = join(repoCacheDir('org/sharded', cache), 'blobs', sha256(shards[first]));
    mkdirSync(join(blob, '..'), { recursive: true });
    writeFileSync(`${blob}.incomplete`, shards[first].subarray(0, 1000));
    const model = await ClipModel.load(ctx, await openModel('org/sharded'));
    expect(await imageFeatures(model)).toEqual(singleFeatures);
    model.destroy();
    expect(hub.served.find((s) => s.path === `/blob/${sha256(shards[first])}` && s.method === 'GET')?.range).toBe(
      'bytes=1000-',
    );
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
    // The Hub has no model.safetensors here: remembered in .no_exist as huggingface_hub does.
    expect(existsSync(join(repoCacheDir('org/sharded', cache), '.no_exist', COMMIT_A, 'model.safetensors'))).toBe(true);
  });

  it('sends HF_TOKEN to the Hub (never to the CDN), and explains 401 and 403', async () => {
    const hub = await fakeHub({
      'org/private': tinyRepo({ token: 'hf_secret' }),
      'org/gated': tinyRepo({ gated: true }),
    });
    await expect(openModel('org/private')).rejects.toThrow(
      'org/private needs a token (401): it is gated or private, or does not exist. Accept its licence on https://huggingface.co/org/private if it asks, then set HF_TOKEN',
    );
    await expect(openModel('org/gated')).rejects.toThrow(
      'The Hugging Face Hub refused access to org/gated (403): accept the licence on https://huggingface.co/org/gated',
    );
    process.env.HF_TOKEN = 'hf_secret';
    expect((await resolveModel('org/private')).revision).toBe(COMMIT_A);
    expect(hub.served.filter((s) => s.path.startsWith('/org/private/')).at(-1)!.authorization).toBe('Bearer hf_secret');
    expect(hub.served.filter((s) => s.path.startsWith('/blob/')).every((s) => s.authorization === null)).toBe(true);
  });

  it('reads the token `hf auth login` saved in HF_HOME', async () => {
    await fakeHub({ 'org/private': tinyRepo({ token: 'hf_saved' }) });
    mkdirSync(process.env.HF_HOME!, { recursive: true });
    writeFileSync(join(process.env.HF_HOME!, 'token'), 'hf_saved\n');
    expect((await resolveModel('org/private')).revision).toBe(COMMIT_A);
  });

  it('refuses an unknown revision, a pickle-only repo, and a repo that is not CLIP', async () => {
    await fakeHub({
      'org/tiny': tinyRepo(),
      'org/pickle': { files: { ...textFiles(), 'pytorch_model.bin': Buffer.from('pickle') }, refs: { main: COMMIT_A } },
      'org/bert': { files: { 'config.json': Buffer.from('{}') }, refs: { main: COMMIT_A } },
    });
    await expect(openModel('org/tiny@nope')).rejects.toThrow(
      'org/tiny: has no branch, tag or commit "nope" on the Hub',
    );
    await expect(openModel('org/pickle')).rejects.toThrow(
      'org/pickle on the Hub has only pytorch_model.bin, a pickle file, which octoclip never loads',
    );
    await expect(openModel('org/bert')).rejects.toThrow('org/bert: has no vocab.json at revision main on the Hub');
    await expect(openModel('not a repo')).rejects.toThrow('is neither a directory nor a Hugging Face repo id');
  });
});
