// A merged model: the base checkpoint with an adapter folded into its weights, W = W0 + s (B_1 + ... + B_n) A_s
// for every adapted matrix, so that any CLIP loader (transformers' CLIPModel, octoclip without an adapter)
// computes what the base model with the adapter computes. GPU-free: it works on the checkpoint's bytes.

import { adaptedMatrices, type AdapterMetadata, type AdapterTensors } from './adapter-file';
import { FINGERPRINT_TENSORS, fingerprintWeights } from '../model/fingerprint';
import { decodeTensor, encodeSafetensors, parseSafetensorsHeader, type SafetensorsHeader } from '../model/safetensors';

/** The adapter cannot be merged into this checkpoint; the message says why. */
export class MergeError extends Error {
  override name = 'MergeError';
}

/** The base model's fingerprint from its checkpoint (as ClipWeights computes it on load), without a GPU. */
export function checkpointFingerprint(checkpoint: Uint8Array, header: SafetensorsHeader, fileName?: string): string {
  return fingerprintWeights(
    FINGERPRINT_TENSORS.map((name) => {
      const entry = header.tensors.get(name);
      if (!entry) throw new MergeError(`${fileName ?? 'the checkpoint'} has no ${name}: is it a CLIP model?`);
      return decodeTensor(entry, checkpoint.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength), fileName);
    }),
  );
}

/**
 * The merged checkpoint: a copy of `checkpoint` (model.safetensors bytes) with each adapted weight replaced by
 * W0 + s (sum_i B_i) A_s, summed in float64 and rounded to float32 once. Everything else (other tensors, their
 * order, the metadata) is copied byte for byte. Refuses weights stored below float32 (rounding W to F16 or BF16
 * would lose most of the adapter's small delta) and an adapter made for another base.
 */
export function mergeAdapter(
  checkpoint: Uint8Array,
  meta: AdapterMetadata,
  tensors: AdapterTensors,
  fileName = 'model.safetensors',
): Uint8Array {
  const header = parseSafetensorsHeader(checkpoint, checkpoint.length, fileName);
  const fingerprint = checkpointFingerprint(checkpoint, header, fileName);
  if (fingerprint !== meta.baseModelFingerprint) {
    throw new MergeError(
      `the adapter was trained on ${meta.baseModel} (fingerprint ${meta.baseModelFingerprint}), this checkpoint is another model (fingerprint ${fingerprint})`,
    );
  }
  const merged = checkpoint.slice();
  const blockRank = meta.rank / meta.blocks;
  for (const { path, aName, bName } of adaptedMatrices(meta)) {
    const entry = header.tensors.get(`${path}.weight`);
    if (!entry) throw new MergeError(`${fileName} has no ${path}.weight to merge into`);
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
    const w0 = decodeTensor(
      entry,
      checkpoint.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength),
      fileName,
    );
    const w = foldDelta(w0, meta.scaling, b.data, a.data, meta.blocks, dOut, blockRank, dIn);
    merged.set(float32Bytes(entry.name, w), entry.byteOffset);
  }
  return merged;
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
