// A dense row-major tensor in a GPU storage buffer: the whole buffer, or a slice of another tensor's
// (parameters that one kernel updates together live in one buffer; see AdapterSet). WebGPU treats a
// buffer as one resource: a dispatch may not write one slice of a buffer while it reads another, and a
// copy may not go between slices of one buffer. Elements are f32, or f16 (frozen weights in half
// precision: two per u32, as src/gpu/half.ts packs them; only kernels that declare u32 storage read them).

import type { MemoryTracker } from './memory';

/**
 * Where a slice may start, in bytes: the largest minStorageBufferOffsetAlignment WebGPU allows, so
 * slices bind on every adapter.
 */
export const SLICE_ALIGNMENT_BYTES = 256;

export type ElementType = 'f32' | 'f16';

export const BYTES_PER_ELEMENT: Record<ElementType, number> = { f32: 4, f16: 2 };

/** The bytes `size` elements take: whole u32 words (an odd number of halves ends with a padding half). */
export function tensorByteLength(size: number, type: ElementType): number {
  return Math.ceil((size * BYTES_PER_ELEMENT[type]) / 4) * 4;
}

/** `elements` rounded up to where the next slice may start: planes of one buffer lie this far apart. */
export function sliceAlignedElements(elements: number, type: ElementType = 'f32'): number {
  const perSlice = SLICE_ALIGNMENT_BYTES / BYTES_PER_ELEMENT[type];
  return Math.ceil(elements / perSlice) * perSlice;
}

export class Tensor {
  readonly size: number;

  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly label: string,
    private readonly memory: MemoryTracker,
    /** False for views and slices: the buffer belongs to another tensor. */
    private readonly ownsBuffer = true,
    /** Where the data starts in the buffer; a tensor that starts at 0 spans the whole buffer. */
    readonly byteOffset = 0,
    private readonly isSlice = false,
    readonly type: ElementType = 'f32',
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }

  get byteLength(): number {
    return tensorByteLength(this.size, this.type);
  }

  /** How kernels bind it: the whole buffer, or a slice's own range. */
  get binding(): GPUBufferBinding {
    return this.isSlice
      ? { buffer: this.buffer, offset: this.byteOffset, size: this.byteLength }
      : { buffer: this.buffer };
  }

  /** The same data under another shape with the same element count (no copy). */
  view(shape: readonly number[], label = this.label): Tensor {
    const view = new Tensor(this.buffer, shape, label, this.memory, false, this.byteOffset, this.isSlice, this.type);
    if (view.size !== this.size)
      throw new RangeError(`${label}: cannot view ${shapeString(this.shape)} as ${shapeString(shape)}`);
    return view;
  }

  /** The elements from `elementOffset` on, as a tensor of `shape` (no copy); the start must be aligned. */
  slice(elementOffset: number, shape: readonly number[], label: string): Tensor {
    const byteOffset = this.byteOffset + elementOffset * BYTES_PER_ELEMENT[this.type];
    const slice = new Tensor(this.buffer, shape, label, this.memory, false, byteOffset, true, this.type);
    if (!Number.isInteger(elementOffset) || elementOffset < 0 || elementOffset + slice.size > this.size) {
      throw new RangeError(
        `${label}: ${shapeString(shape)} at element ${elementOffset} does not fit in ${this.label} ${shapeString(this.shape)}`,
      );
    }
    if (slice.byteOffset % SLICE_ALIGNMENT_BYTES !== 0) {
      throw new RangeError(
        `${label}: a slice must start at a multiple of ${SLICE_ALIGNMENT_BYTES} bytes, not ${slice.byteOffset}`,
      );
    }
    return slice;
  }

  destroy(): void {
    if (this.ownsBuffer) this.memory.release(this.buffer);
  }
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
