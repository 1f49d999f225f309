// Byte accounting for every GPU buffer the engine creates: the base of every memory figure.

/** Names the group a buffer's bytes count under in a breakdown, from the buffer's label. */
export type MemoryGroupOf = (label: string) => string;

export class MemoryTracker {
  current = 0;
  peak = 0;
  private readonly live = new Map<GPUBuffer, number>();
  private deferred: GPUBuffer[] | null = null;
  private groups: {
    groupOf: MemoryGroupOf;
    /** groupOf by label: the engine gives the same labels over and over. */
    byLabel: Map<string, string>;
    current: Map<string, number>;
    atPeak: Map<string, number>;
  } | null = null;

  track(buffer: GPUBuffer): GPUBuffer {
    this.live.set(buffer, buffer.size);
    this.current += buffer.size;
    if (this.groups) this.addToGroup(buffer, buffer.size);
    if (this.current > this.peak) {
      this.peak = this.current;
      if (this.groups) this.groups.atPeak = new Map(this.groups.current);
    }
    return buffer;
  }

  /**
   * Takes a released buffer instead of its being destroyed, returning true (GpuContext keeps storage
   * buffers for the next tensor of their size); its bytes no longer count as live either way.
   */
  recycler: ((buffer: GPUBuffer) => boolean) | null = null;

  release(buffer: GPUBuffer): void {
    const size = this.live.get(buffer);
    if (size === undefined) return;
    this.live.delete(buffer);
    this.current -= size;
    if (this.groups) this.addToGroup(buffer, -size);
    if (this.recycler?.(buffer)) return;
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
    if (this.groups) this.groups.atPeak = new Map(this.groups.current);
  }

  /**
   * From now on, also keep which groups of buffers (groupOf their labels) hold the bytes at the peak:
   * peakBreakdown(). Off by default, as it costs a little on every allocation.
   */
  groupBy(groupOf: MemoryGroupOf): void {
    this.groups = { groupOf, byLabel: new Map(), current: new Map(), atPeak: new Map() };
    for (const [buffer, size] of this.live) this.addToGroup(buffer, size);
    this.groups.atPeak = new Map(this.groups.current);
  }

  /** The bytes alive at the peak by group (see groupBy); they add up to peak. */
  peakBreakdown(): Record<string, number> {
    if (!this.groups)
      throw new Error('MemoryTracker.peakBreakdown needs groupBy() before the allocations it breaks down');
    return Object.fromEntries([...this.groups.atPeak].filter(([, bytes]) => bytes > 0));
  }

  get liveBuffers(): number {
    return this.live.size;
  }

  private addToGroup(buffer: GPUBuffer, bytes: number): void {
    const { groupOf, byLabel, current } = this.groups!;
    let group = byLabel.get(buffer.label);
    if (group === undefined) byLabel.set(buffer.label, (group = groupOf(buffer.label)));
    current.set(group, (current.get(group) ?? 0) + bytes);
  }
}
