// The frozen CLIP weights on the GPU, by checkpoint name, streamed from model.safetensors (or the shards
// model.safetensors.index.json names) one tensor at a time: the files are never held in memory, only the
// tensor being uploaded.

import { MODEL_FILES } from '../common/file-names';
import { parseShardIndex, ShardIndexError, type ShardIndex } from '../common/shard-index';
import { type GpuContext, GpuError } from '../gpu/context';
import { HALF_MAX, HalfRangeError } from '../gpu/half';
import type { Arithmetic } from '../gpu/shaders';
import { type ElementType, sliceAlignedElements, type Tensor } from '../gpu/tensor';
import type { Planes } from '../kernels/matmul';
import { checkTensors, expectedTensors, type ClipConfig } from './config';
import { FINGERPRINT_TENSORS, fingerprintWeights } from './fingerprint';
import {
  decodeTensor,
  ModelFileError,
  parseSafetensorsHeader,
  safetensorsHeaderSize,
  type TensorEntry,
} from './safetensors';

/** Random access to a file's bytes: a File/Blob slice in a browser, a file handle in Node. */
export interface ByteSource {
  name: string;
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the underlying file, if any. */
  close?(): Promise<void>;
}

/** A checkpoint in shards: model.safetensors.index.json's text and the shard files it names. */
export interface ShardedWeights {
  index: string;
  shards: readonly ByteSource[];
}

/** model.safetensors, or its shards. */
export type WeightFiles = ByteSource | ShardedWeights;

export function isSharded(weights: WeightFiles): weights is ShardedWeights {
  return 'shards' in weights;
}

/** Releases every file of the weights (the one file, or each shard). */
export async function closeWeightFiles(weights: WeightFiles): Promise<void> {
  for (const source of isSharded(weights) ? weights.shards : [weights]) await source.close?.();
}

/** A file name without its directories (shard sources may be named by path). */
function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
}

/** The shard index's map and shard names; what is wrong with it is a ModelFileError naming the index file. */
export function readShardIndex(text: string): ShardIndex {
  try {
    return parseShardIndex(text);
  } catch (error) {
    if (error instanceof ShardIndexError) throw new ModelFileError(error.problem, MODEL_FILES.weightsIndex);
    throw error;
  }
}

export function byteSourceFromBytes(name: string, bytes: Uint8Array): ByteSource {
  return { name, size: bytes.length, read: async (offset, length) => bytes.subarray(offset, offset + length) };
}

export function byteSourceFromBlob(name: string, blob: Blob): ByteSource {
  return {
    name,
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}

/**
 * How the large frozen weights are stored: f32, or f16 (half the memory; kernels widen each value to
 * f32 and compute in f32: matmul.wgsl's F16_B, embedding.wgsl's F16_TOKEN_EMBEDDING). The rest (position
 * and class embeddings, layer norms, biases) is under 1% of a model and stays f32.
 */
export type WeightStorage = 'f32' | 'f16';

/** nn.Linear's weights, the patch convolution's and the token table: the kernels that read them read halves. */
const HALF_STORABLE = /(?:_proj|\.fc[12]|_projection|\.patch_embedding|\.token_embedding)\.weight$/;

/** The element type of a checkpoint tensor on the GPU under `storage`. */
export function weightElementType(name: string, storage: WeightStorage): ElementType {
  return storage === 'f16' && HALF_STORABLE.test(name) ? 'f16' : 'f32';
}

/** q_proj, k_proj and v_proj of an attention block: matched by name, with the plane each takes. */
const QKV_TENSOR = /^(.+\.self_attn)\.([qkv])_proj\.(weight|bias)$/;
const QKV_PLANE: Record<string, number> = { q: 0, k: 1, v: 2 };

/**
 * Where each q/k/v tensor goes: a slice of its layer's fused weight [3 planes of d_out x d_in] or bias
 * [3 planes of d_out], made the first time one of the three comes, so that ClipEncoder computes q, k
 * and v as one product. Every other tensor gets its own buffer.
 */
function qkvAllocator(ctx: GpuContext, fused: Map<string, Planes>, storage: WeightStorage) {
  return (name: string, shape: readonly number[]): Tensor => {
    const type = weightElementType(name, storage);
    const match = QKV_TENSOR.exec(name);
    if (!match) return ctx.tensor(shape, name, undefined, type);
    const [, attention, projection, kind] = match;
    const fusedName = `${attention}.qkv_proj.${kind}`;
    const size = shape.reduce((a, b) => a * b, 1);
    let planes = fused.get(fusedName);
    if (!planes) {
      const stride = sliceAlignedElements(size, type);
      planes = { tensor: ctx.tensor([3 * stride], fusedName, undefined, type), stride, count: 3 };
      fused.set(fusedName, planes);
    }
    return planes.tensor.slice(QKV_PLANE[projection] * planes.stride, shape, name);
  };
}

/** The weights as a browser holds them (model.safetensors's Blob, or the index's and each named shard's) for the loader. */
export async function weightFilesFromBlobs(
  weights: Blob | { index: Blob; shards: readonly { name: string; blob: Blob }[] },
): Promise<WeightFiles> {
  if (weights instanceof Blob) return byteSourceFromBlob(MODEL_FILES.weights, weights);
  return {
    index: await weights.index.text(),
    shards: weights.shards.map(({ name, blob }) => byteSourceFromBlob(name, blob)),
  };
}

export interface WeightLoadOptions {
  weightStorage?: WeightStorage;
  /** The precision of the products with the frozen weights (the linear layers'); 'f16' needs shader-f16. */
  arithmetic?: Arithmetic;
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

export class ClipWeights {
  private constructor(
    /** By checkpoint name; q/k/v weights and biases are slices of `fused`'s. */
    private readonly tensors: Map<string, Tensor>,
    private readonly fused: Map<string, Planes>,
    /** exp(logit_scale), clamped to 100 as Hugging Face does. */
    readonly logitScale: number,
    /** Identifies these weights (adapter files record it to refuse another base model). */
    readonly fingerprint: string,
    readonly weightStorage: WeightStorage,
    readonly arithmetic: Arithmetic,
  ) {}

  get(name: string): Tensor {
    const tensor = this.tensors.get(name);
    if (!tensor) throw new Error(`CLIP weight ${name} is not loaded`);
    return tensor;
  }

  /** The fused q/k/v weight and bias of an attention block, `<tower>_model.encoder.layers.<i>.self_attn`. */
  qkv(attention: string): { weight: Planes; bias: Planes } {
    const planes = (kind: string) => {
      const found = this.fused.get(`${attention}.qkv_proj.${kind}`);
      if (!found) throw new Error(`CLIP weights ${attention}.q_proj/k_proj/v_proj.${kind} are not loaded`);
      return found;
    };
    return { weight: planes('weight'), bias: planes('bias') };
  }

  /** The checkpoint's bytes on the GPU (the fused q/k/v tensors' alignment padding aside). */
  get byteLength(): number {
    let total = 0;
    for (const t of this.tensors.values()) total += t.byteLength;
    return total;
  }

  destroy(): void {
    this.tensors.forEach((t) => t.destroy());
    this.tensors.clear();
    this.fused.forEach((planes) => planes.tensor.destroy());
    this.fused.clear();
  }

  /**
   * Every tensor the model needs, all zero (WebGPU zero-fills new buffers), without a file: for a dry
   * run, where only the allocations matter (src/training/memory-plan.ts).
   */
  static zeros(
    ctx: GpuContext,
    config: ClipConfig,
    { weightStorage = 'f32', arithmetic = 'f32' }: WeightLoadOptions = {},
  ): ClipWeights {
    const tensors = new Map<string, Tensor>();
    const fused = new Map<string, Planes>();
    const allocate = qkvAllocator(ctx, fused, weightStorage);
    for (const [name, shape] of expectedTensors(config)) tensors.set(name, allocate(name, gpuShape(name, shape)));
    return new ClipWeights(tensors, fused, 1, 'zeros', weightStorage, arithmetic); // exp(logit_scale) of a zero logit_scale
  }

  /**
   * Validates every header against the config before uploading anything, then uploads each tensor the model
   * needs (the patch convolution as the [hidden, 3*P*P] matrix it multiplies as).
   */
  static async load(
    ctx: GpuContext,
    config: ClipConfig,
    weights: WeightFiles,
    options: WeightLoadOptions = {},
  ): Promise<ClipWeights> {
    const sources = isSharded(weights) ? weights.shards : [weights];
    try {
      // Refused before anything is read: its products would fail at the first dispatch.
      if (options.arithmetic === 'f16' && !ctx.hasF16Arithmetic) {
        throw new GpuError(
          `f16 arithmetic needs the adapter's shader-f16 feature, which ${ctx.adapterName} does not offer: use f16-storage or f32`,
        );
      }
      const located = await locateTensors(weights);
      checkTensors({ tensors: located }, config, isSharded(weights) ? MODEL_FILES.weightsIndex : weights.name);
      return await ClipWeights.upload(ctx, config, located, options);
    } finally {
      await Promise.all(sources.map((source) => source.close?.()));
    }
  }

  private static async upload(
    ctx: GpuContext,
    config: ClipConfig,
    located: Map<string, LocatedTensor>,
    { weightStorage = 'f32', arithmetic = 'f32', onProgress }: WeightLoadOptions,
  ): Promise<ClipWeights> {
    const tensors = new Map<string, Tensor>();
    const fused = new Map<string, Planes>();
    const allocate = qkvAllocator(ctx, fused, weightStorage);
    let logitScale = Math.log(100);
    const fingerprinted = new Map<string, Float32Array>();
    const expected = expectedTensors(config);
    const total = [...expected.keys()].reduce((sum, name) => sum + located.get(name)!.byteLength, 0);
    let loaded = 0;
    try {
      for (const [name, shape] of expected) {
        const entry = located.get(name)!;
        const { source } = entry;
        const values = decodeTensor(entry, await source.read(entry.byteOffset, entry.byteLength), source.name);
        if (values.some((v) => !Number.isFinite(v))) {
          throw new ModelFileError(`tensor ${name} holds NaN or infinite values: the file is corrupt`, source.name);
        }
        if (name === 'logit_scale') logitScale = values[0];
        if ((FINGERPRINT_TENSORS as readonly string[]).includes(name)) fingerprinted.set(name, values);
        const tensor = allocate(name, gpuShape(name, shape));
        tensors.set(name, tensor);
        try {
          ctx.upload(tensor, values);
        } catch (error) {
          if (!(error instanceof HalfRangeError)) throw error;
          throw new ModelFileError(
            `tensor ${name} holds ${error.value}, beyond half precision's range (±${HALF_MAX}): load this model in f32`,
            source.name,
          );
        }
        loaded += entry.byteLength;
        onProgress?.(loaded, total);
      }
    } catch (error) {
      tensors.forEach((t) => t.destroy());
      fused.forEach((planes) => planes.tensor.destroy());
      throw error;
    }
    const fingerprint = fingerprintWeights(FINGERPRINT_TENSORS.map((name) => fingerprinted.get(name)!));
    return new ClipWeights(tensors, fused, Math.min(Math.exp(logitScale), 100), fingerprint, weightStorage, arithmetic);
  }
}

/** How a checkpoint tensor lives on the GPU: the patch convolution as the [hidden, 3*P*P] matrix it multiplies as, a scalar as [1]. */
function gpuShape(name: string, shape: readonly number[]): readonly number[] {
  if (name === 'vision_model.embeddings.patch_embedding.weight') return [shape[0], shape[1] * shape[2] * shape[3]];
  return shape.length ? shape : [1];
}

/** A tensor of the checkpoint and the file that holds it. */
type LocatedTensor = TensorEntry & { source: ByteSource };

async function readHeader(source: ByteSource) {
  const prefix = await source.read(0, Math.min(8, source.size));
  const headerSize = safetensorsHeaderSize(prefix, source.size, source.name);
  return parseSafetensorsHeader(await source.read(0, headerSize), source.size, source.name);
}

/**
 * Every tensor of the checkpoint with its file, each header validated and the model's tensors checked against the
 * config. For shards, the index must name only shards that are given, and each shard must hold what it places there.
 */
async function locateTensors(weights: WeightFiles): Promise<Map<string, LocatedTensor>> {
  if (!isSharded(weights)) {
    const header = await readHeader(weights);
    return new Map([...header.tensors].map(([name, entry]) => [name, { ...entry, source: weights }]));
  }
  const { weightMap, shardNames } = readShardIndex(weights.index);
  const byName = new Map(weights.shards.map((source) => [baseName(source.name), source]));
  const located = new Map<string, LocatedTensor>();
  for (const shardName of shardNames) {
    const source = byName.get(shardName);
    if (!source) {
      throw new ModelFileError(
        `names the shard ${shardName}, which is missing: give every file the index lists (${shardNames.join(', ')})`,
        MODEL_FILES.weightsIndex,
      );
    }
    const header = await readHeader(source);
    for (const [tensor, shard] of weightMap) {
      if (shard !== shardName) continue;
      const entry = header.tensors.get(tensor);
      if (!entry)
        throw new ModelFileError(
          `has no tensor ${tensor}, which ${MODEL_FILES.weightsIndex} places there`,
          source.name,
        );
      located.set(tensor, { ...entry, source });
    }
  }
  return located;
}
