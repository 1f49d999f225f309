// The tiny CLIP (src/model/tiny.ts) loaded on the test's device, and its weights as plain arrays for the
// float64 reference.

import type { GpuContext } from '../../src/gpu/context';
import { ClipModel, type ClipModelFiles } from '../../src/model/clip';
import { decodeTensor, parseSafetensorsHeader } from '../../src/model/safetensors';
import { makeTinyClip, type TinyClipOptions } from '../../src/model/tiny';
import { byteSourceFromBytes } from '../../src/model/weights';
import type { ModelFileBlobs } from '../../src/worker/protocol';

export function tinyModelFiles(options: TinyClipOptions = {}): ClipModelFiles & { safetensors: Uint8Array } {
  const { files } = makeTinyClip(options);
  const text = (name: string) => {
    const file = files[name];
    return typeof file === 'string' ? file : new TextDecoder().decode(file);
  };
  const safetensors = files['model.safetensors'] as Uint8Array;
  return {
    id: 'tiny-clip',
    config: text('config.json'),
    weights: byteSourceFromBytes('model.safetensors', safetensors),
    vocab: text('vocab.json'),
    merges: text('merges.txt'),
    preprocessor: text('preprocessor_config.json'),
    safetensors,
  };
}

export function weightMap(safetensors: Uint8Array): Map<string, Float32Array> {
  const header = parseSafetensorsHeader(safetensors, safetensors.length);
  const weights = new Map<string, Float32Array>();
  for (const [name, entry] of header.tensors) {
    if (entry.dtype === 'F32' || entry.dtype === 'F16' || entry.dtype === 'BF16') {
      weights.set(
        name,
        decodeTensor(entry, safetensors.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength)),
      );
    }
  }
  return weights;
}

export async function loadTinyModel(ctx: GpuContext, options: TinyClipOptions = {}) {
  const files = tinyModelFiles(options);
  const model = await ClipModel.load(ctx, files);
  return { model, weights: weightMap(files.safetensors), files };
}

/** The tiny CLIP's files as the studio hands them to the worker (ModelFileBlobs). */
export function tinyModelBlobs(options: TinyClipOptions = {}): ModelFileBlobs {
  const { files } = makeTinyClip(options);
  const blob = (name: string) => {
    const file = files[name];
    return new Blob([typeof file === 'string' ? file : new Uint8Array(file)]);
  };
  return {
    config: blob('config.json'),
    weights: blob('model.safetensors'),
    vocab: blob('vocab.json'),
    merges: blob('merges.txt'),
    preprocessor: blob('preprocessor_config.json'),
  };
}
