// octoclip as a library in Node: `loadClassifier({ model, adapter })`, then classify images given as file paths
// or encoded bytes (PNG, JPEG, WebP, GIF, TIFF, AVIF). WebGPU through Dawn, as the CLI.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createNodeGpuContext } from '../node/gpu';
import { decodeImageFile } from '../node/images';
import { closeWeightFiles } from '../model/weights';
import { openModel } from '../node/model-files';
import { Classifier, type ClassifierOptions } from './classifier';

export { Classifier, type ClassifierOptions, type ClassProbability } from './classifier';

/** An image file's path, or its encoded bytes. */
export type NodeImage = string | Uint8Array;

export interface LoadClassifierOptions extends ClassifierOptions {
  /** A model directory in the Hub layout, or a Hub repo id such as "openai/clip-vit-base-patch32" (read from and downloaded into the Hugging Face cache). */
  model: string;
  /** An octoclip adapter: its file's path, or its bytes. */
  adapter?: string | Uint8Array;
}

export async function loadClassifier(options: LoadClassifierOptions): Promise<Classifier<NodeImage>> {
  const adapter =
    typeof options.adapter === 'string'
      ? { bytes: new Uint8Array(await readFile(options.adapter)), name: basename(options.adapter) }
      : options.adapter
        ? { bytes: options.adapter, name: 'adapter' }
        : null;
  const files = await openModel(options.model);
  const ctx = await createNodeGpuContext();
  try {
    return await Classifier.create(ctx, files, adapter, options, decodeNodeImage);
  } catch (error) {
    ctx.destroy();
    throw error;
  } finally {
    await closeWeightFiles(files.weights);
  }
}

async function decodeNodeImage(image: NodeImage) {
  if (typeof image === 'string') return decodeImageFile(image);
  // The file decoder (with its format and size checks) reads paths: bytes go through a private temporary file.
  const dir = await mkdtemp(join(tmpdir(), 'octoclip-image-'));
  try {
    await writeFile(join(dir, 'image'), image);
    return await decodeImageFile(join(dir, 'image'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
