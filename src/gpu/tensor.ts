// A dense row-major f32 tensor in one GPU storage buffer.

import type { MemoryTracker } from './memory';

export class Tensor {
  readonly size: number;

  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly label: string,
    private readonly memory: MemoryTracker,
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }

  get byteLength(): number {
    return this.size * 4;
  }

  destroy(): void {
    this.memory.release(this.buffer);
  }
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
