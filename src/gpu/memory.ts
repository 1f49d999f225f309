// Byte accounting for every GPU buffer the engine creates: the base of every memory figure.

export class MemoryTracker {
  current = 0;
  peak = 0;
  private readonly live = new Map<GPUBuffer, number>();

  track(buffer: GPUBuffer): GPUBuffer {
    this.live.set(buffer, buffer.size);
    this.current += buffer.size;
    this.peak = Math.max(this.peak, this.current);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = this.live.get(buffer);
    if (size === undefined) return;
    this.live.delete(buffer);
    this.current -= size;
    buffer.destroy();
  }

  /** Start a new peak measurement from the bytes held now. */
  resetPeak(): void {
    this.peak = this.current;
  }

  get liveBuffers(): number {
    return this.live.size;
  }
}
