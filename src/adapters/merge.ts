// A merged model: the base checkpoint with an adapter folded into its weights, W = W0 + s (B_1 + ... + B_n) A_s
// for every adapted matrix, so that any CLIP loader (transformers' CLIPModel, octoclip without an adapter)
// computes what the base model with the adapter computes. GPU-free: it works on the checkpoint's bytes (one
// model.safetensors, or the shards of a checkpoint saved in several).

import { adaptedMatrices, type AdapterMetadata, type AdapterTensors } from './adapter-file';
import { FINGERPRINT_TENSORS, fingerprintWeights } from '../model/fingerprint';
import { decodeTensor, encodeSafetensors, parseSafetensorsHeader, type TensorEntry } from '../model/safetensors';

/** The adapter cannot be merged into this checkpoint; the message says why. */
export class MergeError extends Error {
  override name = 'MergeError';
}

/** One file of a checkpoint: model.safetensors, or one of the shards its index names. */
export interface CheckpointFile {
  name: string;
  bytes: Uint8Array;
}

/** Every tensor of the checkpoint's files with the file that holds it; a tensor in two files is refused. */
function locateTensors(files: readonly CheckpointFile[]): Map<string, { file: CheckpointFile; entry: TensorEntry }> {
  const located = new Map<string, { file: CheckpointFile; entry: TensorEntry }>();
  for (const file of files) {
    for (const entry of parseSafetensorsHeader(file.bytes, file.bytes.length, file.name).tensors.values()) {
      const other = located.get(entry.name);
      if (other) throw new MergeError(`${entry.name} is in both ${other.file.name} and ${file.name}`);
      located.set(entry.name, { file, entry });
    }
  }
  return located;
}

function decodeIn(file: CheckpointFile, entry: TensorEntry): Float32Array {
  return decodeTensor(entry, file.bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength), file.name);
}

/** The base model's fingerprint from its checkpoint's files (as ClipWeights computes it on load), without a GPU. */
export function checkpointFingerprint(files: readonly CheckpointFile[]): string {
  const located = locateTensors(files);
  return fingerprintWeights(
    FINGERPRINT_TENSORS.map((name) => {
      const found = located.get(name);
      if (!found) throw new MergeError(`${files.map((f) => f.name).join(', ')} hold no ${name}: is it a CLIP model?`);
      return decodeIn(found.file, found.entry);
    }),
  );
}

/**
 * The merged checkpoint: a copy of each of its files (model.safetensors, or every shard) with each adapted weight
 * replaced by W0 + s (sum_i B_i) A_s, summed in float64 and rounded to float32 once. Everything else (other
 * tensors, their order and places, the metadata, so a shard index still holds) is copied byte for byte. Refuses
 * weights stored below float32 (rounding W to F16 or BF16 would lose most of the adapter's small delta) and an
 * adapter made for another base.
 */
export function mergeAdapter(
  files: readonly CheckpointFile[],
  meta: AdapterMetadata,
  tensors: AdapterTensors,
): Uint8Array[] {
  const located = locateTensors(files);
  const fingerprint = checkpointFingerprint(files);
  if (fingerprint !== meta.baseModelFingerprint) {
    throw new MergeError(
      `the adapter was trained on ${meta.baseModel} (fingerprint ${meta.baseModelFingerprint}), this checkpoint is another model (fingerprint ${fingerprint})`,
    );
  }
  const merged = new Map(files.map((file) => [file, file.bytes.slice()]));
  const blockRank = meta.rank / meta.blocks;
  for (const { path, aName, bName } of adaptedMatrices(meta)) {
    const found = located.get(`${path}.weight`);
    if (!found) throw new MergeError(`the checkpoint has no ${path}.weight to merge into`);
    const { file, entry } = found;
    if (entry.dtype !== 'F32') {
      throw new MergeError(
        `${path}.weight is stored as ${entry.dtype}: merging needs F32 weights (rounding to ${entry.dtype} would lose most of the adapter)`,
      );
    }
    const a = tensors.get(aName)!;
    const b = tensors.get(bName)!;
    const [dOut, dIn] = entry.shape;
    if (a.shape[1] !== dIn || b.shape[1] !== dOut)
      throw new MergeError(`${path}.weight is [${entry.shape}], the adapter's delta is [${b.shape[1]}, ${a.shape[1]}]`);
    const w = foldDelta(decodeIn(file, entry), meta.scaling, b.data, a.data, meta.blocks, dOut, blockRank, dIn);
    merged.get(file)!.set(float32Bytes(entry.name, w), entry.byteOffset);
  }
  return files.map((file) => merged.get(file)!);
}

/** W0 [dOut, dIn] + s (sum_i B_i [dOut, k]) A [k, dIn], in float64, rounded to float32 once. */
function foldDelta(
  w0: Float32Array,
  s: number,
  blocks: Float32Array,
  a: Float32Array,
  n: number,
  dOut: number,
  k: number,
  dIn: number,
): Float32Array {
  const w = new Float32Array(w0.length);
  const bSum = new Float64Array(k);
  for (let o = 0; o < dOut; o++) {
    bSum.fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) bSum[j] += blocks[(i * dOut + o) * k + j];
    for (let c = 0; c < dIn; c++) {
      let delta = 0;
      for (let j = 0; j < k; j++) delta += bSum[j] * a[j * dIn + c];
      w[o * dIn + c] = w0[o * dIn + c] + s * delta;
    }
  }
  return w;
}

/** A tensor's little-endian F32 bytes, as the safetensors writer lays them out (the end of a one-tensor file). */
function float32Bytes(name: string, data: Float32Array): Uint8Array {
  const file = encodeSafetensors([{ name, shape: [data.length], data }]);
  return file.subarray(file.length - data.byteLength);
}
