// The frozen CLIP weights on the GPU, by checkpoint name, streamed from model.safetensors one tensor
// at a time: the file is never held in memory, only the tensor being uploaded.

import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { checkTensors, expectedTensors, type ClipConfig } from './config';
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
    const fingerprintParts: Float32Array[] = [];
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
        if (name === 'logit_scale' || name.endsWith('_projection.weight')) fingerprintParts.push(values);
        const gpuShape = name === 'vision_model.embeddings.patch_embedding.weight' ? [shape[0], shape[1] * shape[2] * shape[3]] : shape;
        tensors.set(name, ctx.tensor(gpuShape.length ? gpuShape : [1], name, values));
        loaded += entry.byteLength;
        onProgress?.(loaded, total);
      }
    } catch (error) {
      tensors.forEach((t) => t.destroy());
      throw error;
    }
    return new ClipWeights(tensors, Math.min(Math.exp(logitScale), 100), fingerprintOf(fingerprintParts));
  }
}

/** FNV-1a over the bytes of the given tensors, as 16 hex digits (two 32-bit lanes). */
function fingerprintOf(parts: Float32Array[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (const part of parts) {
    const bytes = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
    for (let i = 0; i < bytes.length; i++) {
      h1 = Math.imul(h1 ^ bytes[i], 0x01000193);
      h2 = Math.imul(h2 ^ bytes[i], 0x01000193 + 2 * i + 1);
    }
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}
