// A dense row-major f32 tensor in one GPU storage buffer.

import type { MemoryTracker } from './memory';

export class Tensor {
  readonly size: number;

  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly label: string,
    private readonly memory: MemoryTracker,
    /** False for views: the buffer belongs to another tensor. */
    private readonly ownsBuffer = true,
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }

  get byteLength(): number {
    return this.size * 4;
  }

  /** The same data under another shape with the same element count (no copy). */
  view(shape: readonly number[], label = this.label): Tensor {
    const view = new Tensor(this.buffer, shape, label, this.memory, false);
    if (view.size !== this.size) throw new RangeError(`${label}: cannot view ${shapeString(this.shape)} as ${shapeString(shape)}`);
    return view;
  }

  destroy(): void {
    if (this.ownsBuffer) this.memory.release(this.buffer);
  }
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
