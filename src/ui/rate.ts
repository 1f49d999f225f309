// Speed over the last few seconds (download bytes, training steps), and the time left at that speed.

const WINDOW_MS = 5000;

export class RateMeter {
  private samples: { time: number; total: number }[] = [];

  /** Records that `total` units (bytes, steps) are done at `time`. */
  add(total: number, time = performance.now()): void {
    this.samples.push({ time, total });
    while (this.samples.length > 2 && time - this.samples[1].time > WINDOW_MS) this.samples.shift();
  }

  /** Units per second over the window; null until two samples span some time. */
  perSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.time - first.time < 200) return null;
    return ((last.total - first.total) * 1000) / (last.time - first.time);
  }

  /** Seconds until `goal` units at the current speed; null when unknown. */
  secondsUntil(goal: number): number | null {
    const rate = this.perSecond();
    const last = this.samples.at(-1);
    return rate && last ? Math.max(0, (goal - last.total) / rate) : null;
  }

  reset(): void {
    this.samples = [];
  }
}
