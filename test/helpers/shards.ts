// A checkpoint cut into shards with their index, as transformers' save_pretrained(max_shard_size=...) writes
// them: the unit tests and the end-to-end tests load the tiny CLIP this way.

import {
  decodeTensor,
  encodeSafetensors,
  parseSafetensorsHeader,
  type TensorEntry,
  type TensorToEncode,
} from '../../src/model/safetensors';
import { MODEL_FILES } from '../../src/common/file-names';

/** model-0000i-of-0000n.safetensors files (tensors in file order, split evenly) and model.safetensors.index.json. */
export function shardCheckpoint(safetensors: Uint8Array, count = 2): Record<string, Uint8Array> {
  const header = parseSafetensorsHeader(safetensors, safetensors.length);
  const entries = [...header.tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset);
  const perShard = Math.ceil(entries.length / count);
  const pad = (n: number) => String(n).padStart(5, '0');
  const bytesOf = (e: TensorEntry) => new Uint8Array(safetensors.subarray(e.byteOffset, e.byteOffset + e.byteLength)); // a copy: aligned
  const files: Record<string, Uint8Array> = {};
  const weightMap: Record<string, string> = {};
  for (let shard = 0; shard < count; shard++) {
    const name = `model-${pad(shard + 1)}-of-${pad(count)}.safetensors`;
    const part = entries.slice(shard * perShard, (shard + 1) * perShard);
    const tensors = part.map(
      (e): TensorToEncode =>
        e.dtype === 'I64'
          ? { name: e.name, shape: e.shape, dtype: 'I64', data: new BigInt64Array(bytesOf(e).buffer) }
          : { name: e.name, shape: e.shape, data: decodeTensor(e, bytesOf(e)) },
    );
    files[name] = encodeSafetensors(tensors);
    for (const e of part) weightMap[e.name] = name;
  }
  files[MODEL_FILES.weightsIndex] = new TextEncoder().encode(
    JSON.stringify({ metadata: { total_size: safetensors.length }, weight_map: weightMap }, null, 2),
  );
  return files;
}
