// octoclip as a library in a web page: `loadClassifier({ model, adapter })`, then classify an ImageBitmap, a
// Blob or a File (a dropped image, a webcam frame). WebGPU from navigator.gpu, on the page's thread or in a worker.

import { openDevice } from '../gpu/device';
import { GpuContext } from '../gpu/context';
import { MODEL_FILES } from '../common/file-names';
import { DEFAULT_REVISION, hubFileUrl, parseHubModelSpec } from '../common/hub-repo';
import { byteSourceFromBlob, weightFilesFromBlobs } from '../model/weights';
import type { ClipModelFiles } from '../model/clip';
import type { RgbaImage } from '../model/preprocessor';
import { listAdapters } from '../storage/adapters';
import { modelFileBlobs } from '../storage/models';
import { imageBitmapOf, pixelsOf } from '../worker/decode';
import { Classifier, type ClassifierOptions } from './classifier';

export { Classifier, type ClassifierOptions, type ClassProbability } from './classifier';

export type BrowserImage = ImageBitmap | Blob;

/** The five files of a Hub CLIP repo, by name (config.json, model.safetensors, vocab.json, merges.txt, preprocessor_config.json). */
export type ModelFiles = Record<string, Blob>;

export interface LoadClassifierOptions extends ClassifierOptions {
  /**
   * A Hub repo id ("openai/clip-vit-base-patch32", fetched from huggingface.co), a base URL of a folder holding the
   * files (ending in "/"), `{ cached: id }` for a model the studio stored in this site's browser storage, or the
   * files themselves.
   */
  model: string | { cached: string } | ModelFiles;
  /** An octoclip adapter: a File or Blob, its bytes, or `{ library: name }` for one in the studio's Adapter library. */
  adapter?: Blob | Uint8Array | { library: string };
}

/** The files `ModelFiles` and a fetched model hold: one model.safetensors (a cached model may also be sharded). */
const { config: CONFIG, weights: WEIGHTS, vocab: VOCAB, merges: MERGES, preprocessor: PREPROCESSOR } = MODEL_FILES;
const FILE_NAMES = [CONFIG, WEIGHTS, VOCAB, MERGES, PREPROCESSOR];

export async function loadClassifier(options: LoadClassifierOptions): Promise<Classifier<BrowserImage>> {
  if (!navigator.gpu)
    throw new Error('this browser has no WebGPU (navigator.gpu): use Chrome or Edge 113+, Firefox 141+ or Safari 26+');
  const gpuAdapter = await navigator.gpu.requestAdapter();
  if (!gpuAdapter) throw new Error('WebGPU offered no adapter on this computer');
  const [files, adapter] = await Promise.all([modelFiles(options.model), adapterFile(options.adapter)]);
  const { device, adapterName } = await openDevice(gpuAdapter);
  const ctx = new GpuContext(device, { adapterName });
  try {
    return await Classifier.create(ctx, files, adapter, options, (image) => decodeBrowserImage(image));
  } catch (error) {
    ctx.destroy();
    throw error;
  }
}

async function modelFiles(model: LoadClassifierOptions['model']): Promise<ClipModelFiles> {
  if (typeof model === 'object' && 'cached' in model && typeof model.cached === 'string') {
    const blobs = await modelFileBlobs(model.cached);
    return {
      id: model.cached,
      config: await blobs.config.text(),
      weights: await weightFilesFromBlobs(blobs.weights),
      vocab: await blobs.vocab.text(),
      merges: await blobs.merges.text(),
      preprocessor: await blobs.preprocessor?.text(),
    };
  }
  if (typeof model === 'object') return filesFromBlobs('model', model as ModelFiles);
  const url = (name: string) =>
    model.endsWith('/')
      ? new URL(name, new URL(model, location.href))
      : hubFileUrl(parseHubModelSpec(model) ?? { repo: model, revision: DEFAULT_REVISION }, name);
  const fetched: ModelFiles = {};
  await Promise.all(
    FILE_NAMES.map(async (name) => {
      const response = await fetch(url(name));
      if (response.ok) fetched[name] = await response.blob();
      else if (name !== PREPROCESSOR)
        throw new Error(`${model}: ${name} could not be fetched (HTTP ${response.status})`);
    }),
  );
  return filesFromBlobs(model, fetched);
}

async function filesFromBlobs(id: string, files: ModelFiles): Promise<ClipModelFiles> {
  const file = (name: string) => {
    const blob = files[name];
    if (!blob) throw new Error(`${id}: ${name} is missing; a CLIP model has ${FILE_NAMES.join(', ')}`);
    return blob;
  };
  return {
    id,
    config: await file(CONFIG).text(),
    weights: byteSourceFromBlob(WEIGHTS, file(WEIGHTS)),
    vocab: await file(VOCAB).text(),
    merges: await file(MERGES).text(),
    preprocessor: await files[PREPROCESSOR]?.text(),
  };
}

async function adapterFile(
  adapter: LoadClassifierOptions['adapter'],
): Promise<{ bytes: Uint8Array; name: string } | null> {
  if (!adapter) return null;
  if (adapter instanceof Uint8Array) return { bytes: adapter, name: 'adapter' };
  if (adapter instanceof Blob)
    return {
      bytes: new Uint8Array(await adapter.arrayBuffer()),
      name: adapter instanceof File ? adapter.name : 'adapter',
    };
  const record = (await listAdapters()).find((a) => a.name === adapter.library);
  if (!record) throw new Error(`the Adapter library has no adapter named "${adapter.library}"`);
  return { bytes: new Uint8Array(await record.file.arrayBuffer()), name: record.name };
}

/** RGBA pixels as the studio's worker reads them (no colour conversion, straight alpha). */
async function decodeBrowserImage(image: BrowserImage): Promise<RgbaImage> {
  if (!(image instanceof Blob)) return pixelsOf(image); // a caller's ImageBitmap stays theirs to close
  const bitmap = await imageBitmapOf(image, image instanceof File ? image.name : 'the image');
  try {
    return pixelsOf(bitmap);
  } finally {
    bitmap.close();
  }
}
