// Timing and printing for the benchmarks: warm-up, then the median of repeats, each synchronised with the
// GPU; fixed-width tables; the code's version.

import { execSync } from 'node:child_process';

/**
 * The commit the benchmark runs, '+ changes' when tracked files differ from it: figures are of that code.
 * A copy without git (a GPU machine lent for minutes) names it in OCTOCLIP_COMMIT (bench/gpu-check.sh).
 */
export function codeVersion(): string {
  if (process.env.OCTOCLIP_COMMIT) return process.env.OCTOCLIP_COMMIT;
  const git = (command: string) =>
    execSync(`git ${command}`, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return `${git('rev-parse --short HEAD')}${git('status --porcelain --untracked-files=no') ? ' + changes' : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

export interface Timing {
  medianMs: number;
  /**
   * Median CPU time of this process over the same runs (process.cpuUsage, every thread). Where the GPU is
   * a CPU (SwiftShader runs inside the process), it is the work done, whatever else the machine runs.
   */
  medianCpuMs: number;
  repeats: number;
}

export interface Sample {
  wallMs: number;
  cpuMs: number;
}

/** Wall-clock and process CPU time of one run of `run`. */
export async function sample(run: () => Promise<void>): Promise<Sample> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await run();
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export function medianTiming(samples: readonly Sample[]): Timing {
  return {
    medianMs: median(samples.map((s) => s.wallMs)),
    medianCpuMs: median(samples.map((s) => s.cpuMs)),
    repeats: samples.length,
  };
}

export interface RepeatPolicy {
  /** Keep repeating until about this many milliseconds have been measured... */
  budgetMs: number;
  /** ...with at least this many repeats... */
  minRepeats: number;
  /** ...and at most this many. */
  maxRepeats: number;
}

/**
 * One untimed warm-up run (shader compilation, first-use allocations) unless the caller did one, then
 * repeats of `run`, which must return only once the GPU has finished its work; the median wall-clock time.
 */
export async function timeMedian(
  run: () => Promise<void>,
  policy: RepeatPolicy,
  options: { warmUp?: boolean } = {},
): Promise<Timing> {
  if (options.warmUp ?? true) await run();
  const samples: Sample[] = [];
  let spent = 0;
  while (samples.length < policy.maxRepeats && (samples.length < policy.minRepeats || spent < policy.budgetMs)) {
    const measured = await sample(run);
    samples.push(measured);
    spent += measured.wallMs;
  }
  return medianTiming(samples);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export const MIB = 1024 * 1024;
export const GIB = 1024 * MIB;

export function mib(bytes: number): string {
  return (bytes / MIB).toFixed(bytes < 10 * MIB ? 2 : 1);
}

export function fixed(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

export function percent(ratio: number | null, digits = 1): string {
  return ratio === null || !Number.isFinite(ratio) ? '-' : `${ratio >= 0 ? '+' : ''}${(100 * ratio).toFixed(digits)}%`;
}

/** Prints rows under a header; the columns named in `right` are right-aligned (numbers). */
export function printTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: ReadonlySet<number> = new Set(),
): void {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => row[column].length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) => (right.has(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  rows.forEach((row) => console.log(line(row)));
}

/** Progress on stderr, so stdout holds only the tables and the JSON. */
export function progress(message: string): void {
  process.stderr.write(`  ${message}\n`);
}
