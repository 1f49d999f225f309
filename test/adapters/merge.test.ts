// mergeAdapter (GPU-free): every adapted weight becomes W0 + s (B_1 + ... + B_n) A_s, checked against a float64
// reference; every other byte of the checkpoint is unchanged, in one file or in shards; another base model
// and F16 weights are refused.

import { describe, expect, it } from 'vitest';
import { adaptedMatrices, decodeAdapterFile } from '../../src/adapters/adapter-file';
import { mergeAdapter, MergeError } from '../../src/adapters/merge';
import { decodeTensor, parseSafetensorsHeader } from '../../src/model/safetensors';
import { makeTinyClip } from '../../src/model/tiny';
import { randomAdapterFile } from '../helpers/random-adapter';
import { shardCheckpoint } from '../helpers/shards';
import { MODEL_FILES } from '../../src/common/file-names';

const files = makeTinyClip({ seed: 5 }).files;
const checkpoint = files['model.safetensors'] as Uint8Array;
const single = (bytes: Uint8Array) => [{ name: 'model.safetensors', bytes }];
const { meta, tensors } = decodeAdapterFile(randomAdapterFile('tiny', files, ['a', 'b']));

function weight(bytes: Uint8Array, name: string): Float32Array {
  const entry = parseSafetensorsHeader(bytes, bytes.length).tensors.get(name)!;
  return decodeTensor(entry, bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength));
}

describe('mergeAdapter', () => {
  it('folds each adapted matrix in, to float32 rounding of the float64 result, and copies the rest', () => {
    const [merged] = mergeAdapter(single(checkpoint), meta, tensors);
    expect(merged.length).toBe(checkpoint.length);
    const changed = new Set<number>();
    for (const { path, aName, bName } of adaptedMatrices(meta)) {
      const w0 = weight(checkpoint, `${path}.weight`);
      const w = weight(merged, `${path}.weight`);
      const a = tensors.get(aName)!;
      const b = tensors.get(bName)!;
      const [n, dOut, k] = b.shape;
      const dIn = a.shape[1];
      for (let o = 0; o < dOut; o++) {
        for (let c = 0; c < dIn; c++) {
          let delta = 0;
          for (let j = 0; j < k; j++) {
            let bSum = 0;
            for (let i = 0; i < n; i++) bSum += b.data[(i * dOut + o) * k + j];
            delta += bSum * a.data[j * dIn + c];
          }
          const expected = w0[o * dIn + c] + meta.scaling * delta;
          expect(Math.abs(w[o * dIn + c] - expected)).toBeLessThanOrEqual(Math.abs(expected) * 2 ** -24 + 1e-12);
        }
      }
      const entry = parseSafetensorsHeader(checkpoint, checkpoint.length).tensors.get(`${path}.weight`)!;
      for (let i = entry.byteOffset; i < entry.byteOffset + entry.byteLength; i++) changed.add(i);
    }
    let differing = 0;
    checkpoint.forEach((byte, i) => {
      if (byte !== merged[i]) {
        differing++;
        expect(changed.has(i), `byte ${i}`).toBe(true);
      }
    });
    expect(differing).toBeGreaterThan(0);
  });

  it('merges into a checkpoint in shards as into one file: each shard gets the weights it holds', () => {
    const shards = Object.entries(shardCheckpoint(checkpoint, 3))
      .filter(([name]) => name !== MODEL_FILES.weightsIndex)
      .map(([name, bytes]) => ({ name, bytes }));
    const [whole] = mergeAdapter(single(checkpoint), meta, tensors);
    const merged = mergeAdapter(shards, meta, tensors);
    expect(merged.map((bytes) => bytes.length)).toEqual(shards.map((s) => s.bytes.length));
    const shardOf = (name: string) =>
      shards.findIndex((s) => parseSafetensorsHeader(s.bytes, s.bytes.length).tensors.has(name));
    for (const name of parseSafetensorsHeader(checkpoint, checkpoint.length).tensors.keys()) {
      if (name.endsWith('position_ids')) continue; // I64
      expect(weight(merged[shardOf(name)], name), name).toEqual(weight(whole, name));
    }
    // Adapted matrices lie in more than one shard, so the test covers merging across them.
    const adaptedShards = new Set(adaptedMatrices(meta).map(({ path }) => shardOf(`${path}.weight`)));
    expect(adaptedShards.size).toBeGreaterThan(1);
    expect(() => mergeAdapter(shards.slice(1), meta, tensors)).toThrow(MergeError);
  });

  it('refuses another base model and weights stored below float32', () => {
    const other = makeTinyClip({ seed: 6 }).files['model.safetensors'] as Uint8Array;
    expect(() => mergeAdapter(single(other), meta, tensors)).toThrow(MergeError);
    expect(() => mergeAdapter(single(other), meta, tensors)).toThrow(
      /trained on tiny .*this checkpoint is another model/,
    );
    const half = makeTinyClip({ seed: 5, dtype: 'F16' }).files;
    const halfAdapter = decodeAdapterFile(randomAdapterFile('tiny', half, ['a', 'b']));
    expect(() =>
      mergeAdapter(single(half['model.safetensors'] as Uint8Array), halfAdapter.meta, halfAdapter.tensors),
    ).toThrow(/is stored as F16: merging needs F32 weights/);
  });
});
