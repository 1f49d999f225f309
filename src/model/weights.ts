// The frozen CLIP weights on the GPU, by checkpoint name, streamed from model.safetensors one tensor
// at a time: the file is never held in memory, only the tensor being uploaded.

import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { checkTensors, expectedTensors, type ClipConfig } from './config';
import { FINGERPRINT_TENSORS, fingerprintWeights } from './fingerprint';
import { decodeTensor, ModelFileError, parseSafetensorsHeader, safetensorsHeaderSize } from './safetensors';

/** Random access to a file's bytes: a File/Blob slice in a browser, a file handle in Node. */
export interface ByteSource {
  name: string;
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the underlying file, if any. */
  close?(): Promise<void>;
}

export function byteSourceFromBytes(name: string, bytes: Uint8Array): ByteSource {
  return { name, size: bytes.length, read: async (offset, length) => bytes.subarray(offset, offset + length) };
}

export function byteSourceFromBlob(name: string, blob: Blob): ByteSource {
  return { name, size: blob.size, read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()) };
}

export class ClipWeights {
  private constructor(
    private readonly tensors: Map<string, Tensor>,
    /** exp(logit_scale), clamped to 100 as Hugging Face does. */
    readonly logitScale: number,
    /** Identifies these weights (adapter files record it to refuse another base model). */
    readonly fingerprint: string,
  ) {}

  get(name: string): Tensor {
    const tensor = this.tensors.get(name);
    if (!tensor) throw new Error(`CLIP weight ${name} is not loaded`);
    return tensor;
  }

  get byteLength(): number {
    let total = 0;
    for (const t of this.tensors.values()) total += t.byteLength;
    return total;
  }

  destroy(): void {
    this.tensors.forEach((t) => t.destroy());
    this.tensors.clear();
  }

  /**
   * Every tensor the model needs, all zero (WebGPU zero-fills new buffers), without a file: for a dry
   * run, where only the allocations matter (src/training/memory-plan.ts).
   */
  static zeros(ctx: GpuContext, config: ClipConfig): ClipWeights {
    const tensors = new Map<string, Tensor>();
    for (const [name, shape] of expectedTensors(config)) tensors.set(name, ctx.tensor(gpuShape(name, shape), name));
    return new ClipWeights(tensors, 1, 'zeros'); // exp(logit_scale) of a zero logit_scale
  }

  /**
   * Validates the whole header against the config before uploading anything, then uploads each
   * tensor the model needs (the patch convolution as the [hidden, 3*P*P] matrix it multiplies as).
   */
  static async load(
    ctx: GpuContext,
    config: ClipConfig,
    source: ByteSource,
    onProgress?: (loadedBytes: number, totalBytes: number) => void,
  ): Promise<ClipWeights> {
    try {
      return await ClipWeights.upload(ctx, config, source, onProgress);
    } finally {
      await source.close?.();
    }
  }

  private static async upload(
    ctx: GpuContext,
    config: ClipConfig,
    source: ByteSource,
    onProgress?: (loadedBytes: number, totalBytes: number) => void,
  ): Promise<ClipWeights> {
    const prefix = await source.read(0, Math.min(8, source.size));
    const headerSize = safetensorsHeaderSize(prefix, source.size, source.name);
    const header = parseSafetensorsHeader(await source.read(0, headerSize), source.size, source.name);
    checkTensors(header, config, source.name);

    const tensors = new Map<string, Tensor>();
    let logitScale = Math.log(100);
    const fingerprinted = new Map<string, Float32Array>();
    const expected = expectedTensors(config);
    const total = [...expected.keys()].reduce((sum, name) => sum + header.tensors.get(name)!.byteLength, 0);
    let loaded = 0;
    try {
      for (const [name, shape] of expected) {
        const entry = header.tensors.get(name)!;
        const values = decodeTensor(entry, await source.read(entry.byteOffset, entry.byteLength), source.name);
        if (values.some((v) => !Number.isFinite(v))) {
          throw new ModelFileError(`tensor ${name} holds NaN or infinite values: the file is corrupt`, source.name);
        }
        if (name === 'logit_scale') logitScale = values[0];
        if ((FINGERPRINT_TENSORS as readonly string[]).includes(name)) fingerprinted.set(name, values);
        tensors.set(name, ctx.tensor(gpuShape(name, shape), name, values));
        loaded += entry.byteLength;
        onProgress?.(loaded, total);
      }
    } catch (error) {
      tensors.forEach((t) => t.destroy());
      throw error;
    }
    const fingerprint = fingerprintWeights(FINGERPRINT_TENSORS.map((name) => fingerprinted.get(name)!));
    return new ClipWeights(tensors, Math.min(Math.exp(logitScale), 100), fingerprint);
  }
}

/** How a checkpoint tensor lives on the GPU: the patch convolution as the [hidden, 3*P*P] matrix it multiplies as, a scalar as [1]. */
function gpuShape(name: string, shape: readonly number[]): readonly number[] {
  if (name === 'vision_model.embeddings.patch_embedding.weight') return [shape[0], shape[1] * shape[2] * shape[3]];
  return shape.length ? shape : [1];
}
