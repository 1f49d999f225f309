// model.safetensors.index.json, the index transformers writes beside a checkpoint saved in shards: read by the
// engine's loader, the CLI's model folders and Hub downloads, and the studio's dropped folders and downloads.

import { MODEL_FILES } from './file-names';

/** What is wrong with an index; the engine turns it into its ModelFileError, with the same message. */
export class ShardIndexError extends Error {
  constructor(readonly problem: string) {
    super(`${MODEL_FILES.weightsIndex}: ${problem}`);
    this.name = 'ShardIndexError';
  }
}

/** A shard index's tensor-to-shard map and the shard file names it lists, in order. */
export interface ShardIndex {
  weightMap: Map<string, string>;
  shardNames: string[];
}

/**
 * Reads an index after checking its form: a weight_map from tensor names to plain .safetensors file names (a path
 * would reach outside the model's folder). Throws a ShardIndexError saying what is wrong.
 */
export function parseShardIndex(text: string): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ShardIndexError(`not valid JSON (${(error as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new ShardIndexError('has no weight_map object (tensor name to shard file)');
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || !/^[\w.-]+\.safetensors$/.test(shard) || shard.startsWith('.')) {
      throw new ShardIndexError(
        `weight_map places ${tensor} in ${JSON.stringify(shard)}, which is not a .safetensors file name in the same folder`,
      );
    }
    weightMap.set(tensor, shard);
  }
  return { weightMap, shardNames: [...new Set(weightMap.values())] };
}
