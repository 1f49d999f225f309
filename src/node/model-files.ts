// A CLIP model's files for Node: a local directory in the Hub's layout, or a Hub repo id downloaded
// once into ~/.cache/octoclip (resuming a partial download). Weights stay on disk and stream to the GPU.

import { createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MODEL_FILES, REQUIRED_MODEL_FILES } from '../common/file-names';
import type { ClipModelFiles } from '../model/clip';
import { ModelFileError } from '../model/safetensors';
import type { ByteSource } from '../model/weights';


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
        if (bytesRead === 0) throw new ModelFileError(`ended at byte ${offset + done}, expected ${offset + length}`, path);
        done += bytesRead;
      }
      return buffer;
    },
    close: () => handle.close(),
  };
}

/** Opens a model directory, or downloads a Hub repo id ("owner/name") first. */
export async function openModel(model: string, log: (line: string) => void = () => {}): Promise<ClipModelFiles> {
  const dir = existsSync(model) ? model : await downloadFromHub(model, log);
  if (!statSync(dir).isDirectory()) throw new ModelFileError('is not a directory with config.json, model.safetensors, vocab.json and merges.txt', dir);
  for (const file of REQUIRED_MODEL_FILES) {
    if (!existsSync(join(dir, file))) throw new ModelFileError(`has no ${file}: a CLIP model directory holds ${REQUIRED_MODEL_FILES.join(', ')}`, dir);
  }
  const text = (file: string) => readFile(join(dir, file), 'utf8');
  return {
    id: model,
    config: await text('config.json'),
    weights: await fileByteSource(join(dir, 'model.safetensors')),
    vocab: await text('vocab.json'),
    merges: await text('merges.txt'),
    preprocessor: existsSync(join(dir, 'preprocessor_config.json')) ? await text('preprocessor_config.json') : undefined,
  };
}

const HUB = 'https://huggingface.co';

async function downloadFromHub(repo: string, log: (line: string) => void): Promise<string> {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) {
    throw new ModelFileError('is neither a directory nor a Hugging Face repo id like openai/clip-vit-base-patch32', repo);
  }
  const dir = join(process.env.OCTOCLIP_CACHE ?? join(homedir(), '.cache', 'octoclip'), repo.replace('/', '--'));
  await mkdir(dir, { recursive: true });
  for (const file of Object.values(MODEL_FILES)) {
    const target = join(dir, file);
    if (existsSync(target)) continue;
    const partial = `${target}.partial`;
    const have = existsSync(partial) ? (await stat(partial)).size : 0;
    let response: Response;
    try {
      response = await fetch(`${HUB}/${repo}/resolve/main/${file}`, { headers: have ? { Range: `bytes=${have}-` } : {} });
    } catch (error) {
      throw new ModelFileError(`could not reach the Hugging Face Hub (${(error as Error).message}). Pass a local model directory, or retry when online.`, repo);
    }
    if (response.status === 404 && file === 'preprocessor_config.json') continue;
    if (response.status === 404) throw new ModelFileError(`has no ${file} on the Hub: is it a CLIP repo?`, repo);
    if (!response.ok || !response.body) throw new ModelFileError(`download of ${file} failed: HTTP ${response.status}`, repo);
    const resumed = response.status === 206;
    const total = Number(response.headers.get('content-length') ?? 0) + (resumed ? have : 0);
    log(`downloading ${repo}/${file}${resumed ? ` (resuming at ${have} bytes)` : ''}`);
    const out = createWriteStream(partial, { flags: resumed ? 'a' : 'w' });
    let received = resumed ? have : 0;
    let lastReport = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      received += chunk.length;
      if (total && received - lastReport > total / 20) {
        lastReport = received;
        log(`  ${file}: ${((100 * received) / total).toFixed(0)}% of ${(total / 1e6).toFixed(1)} MB`);
      }
    }
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    await rename(partial, target);
  }
  return dir;
}
