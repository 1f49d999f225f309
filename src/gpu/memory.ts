// Byte accounting for every GPU buffer the engine creates: the base of every memory figure.

export class MemoryTracker {
  current = 0;
  peak = 0;
  private readonly live = new Map<GPUBuffer, number>();
  private deferred: GPUBuffer[] | null = null;

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
    if (this.deferred) this.deferred.push(buffer);
    else buffer.destroy();
  }

  /**
   * While commands are recorded but not yet submitted, destroying a buffer they use is a validation
   * error: buffers released in that window are destroyed by destroyDeferred() right after the submit.
   */
  deferDestruction(): void {
    this.deferred ??= [];
  }

  destroyDeferred(): void {
    const buffers = this.deferred;
    this.deferred = null;
    buffers?.forEach((b) => b.destroy());
  }

  /** Start a new peak measurement from the bytes held now. */
  resetPeak(): void {
    this.peak = this.current;
  }

  get liveBuffers(): number {
    return this.live.size;
  }
}
