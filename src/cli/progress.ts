// Progress lines on stderr for long loops: at most one a second (and the last one), with the time left.

export class Progress {
  private readonly start: number;
  private lastLine = -Infinity;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {
    this.start = now();
  }

  /** `done` of `total` finished; prints a line when a second has passed since the last one, and at the end. */
  update(done: number): void {
    const time = this.now();
    if (done < this.total && time - this.lastLine < this.intervalMs) return;
    this.lastLine = time;
    const elapsed = time - this.start;
    const left = done > 0 ? ((this.total - done) * elapsed) / done : NaN;
    const percent = this.total ? Math.floor((100 * done) / this.total) : 100;
    const tail =
      done < this.total
        ? `, ${Number.isFinite(left) ? formatDuration(left) : '?'} left`
        : ` in ${formatDuration(elapsed)}`;
    this.write(`${this.label}: ${done}/${this.total} (${percent}%)${tail}`);
  }
}

/** 75_000 ms -> "1m15s", 3_700_000 -> "1h01m", 4_200 -> "4.2s". */
export function formatDuration(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
