// The matmul autotune: times every candidate configuration (MATMUL_CONFIGS) on linear layers of CLIP's
// shapes on the adapter at hand, in f32 arithmetic and, where the device has shader-f16, in f16, and
// makes every matmul on that context run the fastest of its arithmetic. The f16 products' time against
// f32's is what 'auto' precision goes by (autoPrecision). The result is a plain record for the host to
// cache (a JSON file in the CLI, IndexedDB in the studio) and give back next time; matmulConfigFor's
// measured table stays the answer until a tune has run, or when one fails.

import { DeviceLostError, type GpuContext } from '../gpu/context';
import { adapterIdentity } from '../gpu/device';
import { type Arithmetic, shaderSource } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { MATMUL_CONFIGS, matmul, matmulConfigFor, useMatmulConfig, type MatmulConfig } from './matmul';
import { isCpuAdapter } from './tuning';

export type MatmulConfigName = keyof typeof MATMUL_CONFIGS;

/** A linear layer's product, y[rows, out] = x[rows, in] W^T + b: M x K x N = rows x in x out. */
export interface TuneShape {
  rows: number;
  inFeatures: number;
  outFeatures: number;
}

/** ViT-B/32's q/k/v projection for one image, ViT-B/16's fc1 for one image, ViT-B/32's q, k, v of 32 images. */
const CLIP_SHAPES: readonly TuneShape[] = [
  { rows: 50, inFeatures: 768, outFeatures: 768 },
  { rows: 197, inFeatures: 768, outFeatures: 3072 },
  { rows: 1600, inFeatures: 768, outFeatures: 2304 },
];

/** What a tune measures on one kind of adapter. */
export interface TunePlan {
  /** f32, and f16 where the device has shader-f16. */
  arithmetics: readonly Arithmetic[];
  candidates: readonly MatmulConfigName[];
  shapes: readonly TuneShape[];
  /** Products per timed sample: enough GPU work that timer quantisation (100 us in browsers) does not decide. */
  productsPerSample: number;
  /** Samples per candidate and shape, interleaved; their median counts. */
  samples: number;
}

const GPU_PLAN: Omit<TunePlan, 'arithmetics'> = {
  candidates: Object.keys(MATMUL_CONFIGS) as MatmulConfigName[],
  shapes: CLIP_SHAPES,
  productsPerSample: 10,
  samples: 3,
};

/**
 * On a CPU adapter (SwiftShader, about 2 GFLOP/s) the shapes shrink 16 times per dimension, and the
 * candidates are the kernels without workgroup barriers: the shared-memory ones compile for one to two
 * seconds each there and ran at a third of the speed (matmulConfigFor's table). One sample each: in a
 * browser every timed sample is a round trip to the GPU process (about 40 ms on SwiftShader). A tune
 * costs 0.5 to 1 s in Node and 1 to 3 s in Chromium on two shared cores, most of it compiling the two pipelines.
 */
const CPU_PLAN: Omit<TunePlan, 'arithmetics'> = {
  candidates: GPU_PLAN.candidates.filter((name) => MATMUL_CONFIGS[name].kernel === 'direct'),
  shapes: CLIP_SHAPES.map((s) => ({
    rows: Math.ceil(s.rows / 16),
    inFeatures: s.inFeatures / 16,
    outFeatures: s.outFeatures / 16,
  })),
  productsPerSample: 1,
  samples: 1,
};

export function tunePlan(ctx: GpuContext): TunePlan {
  const arithmetics: Arithmetic[] = ctx.hasF16Arithmetic ? ['f32', 'f16'] : ['f32'];
  return { arithmetics, ...(isCpuAdapter(ctx) ? CPU_PLAN : GPU_PLAN) };
}

/** Median milliseconds of one product of `shape` with `config` in `arithmetic`. */
export interface MatmulMeasurement {
  arithmetic: Arithmetic;
  config: MatmulConfigName;
  shape: TuneShape;
  ms: number;
}

/** A tune's outcome, as the hosts cache it. */
export interface MatmulTuning {
  /** The adapter and driver it was measured on (adapterIdentity): it holds only there. */
  adapter: string;
  /** Identifies the candidates, shapes and kernel source measured (matmulTuningVersion): any change tunes again. */
  version: string;
  /** The candidate with the lowest total time over the shapes, in f32 arithmetic. */
  config: MatmulConfigName;
  /**
   * Where the device has shader-f16: the fastest candidate in f16 arithmetic, and its total time over the
   * shapes divided by f32's fastest's (below 1: f16 products are faster).
   */
  f16?: { config: MatmulConfigName; timeRatio: number };
  measurements: MatmulMeasurement[];
  /** How long the tune took, pipeline compilation included. */
  milliseconds: number;
  /** When, in milliseconds since 1970. */
  measuredAt: number;
}

/**
 * The configuration every matmul on a context runs: measured now (`tuning` is new: cache it), taken
 * from a cached tuning, or the table's when the tune failed (`reason` says why).
 */
export type MatmulChoice =
  | { source: 'tuned' | 'cached'; config: MatmulConfigName; tuning: MatmulTuning }
  | { source: 'table'; config: MatmulConfigName; reason: string };

export function matmulConfigName(config: MatmulConfig): string {
  const names = Object.keys(MATMUL_CONFIGS) as MatmulConfigName[];
  return names.find((name) => MATMUL_CONFIGS[name] === config) ?? JSON.stringify(config);
}

export function shapeName({ rows, inFeatures, outFeatures }: TuneShape): string {
  return `${rows}x${inFeatures}x${outFeatures}`;
}

/** The adapter a tuning on ctx is for; the adapter's short name where the browser gives no GPUDevice.adapterInfo. */
export function tuningAdapter(ctx: GpuContext): string {
  const info: GPUAdapterInfo | undefined = ctx.device.adapterInfo;
  return info ? adapterIdentity(info) : ctx.adapterName;
}

/** A hash of what a tune on ctx measures: its plan, the candidates' settings and the matmul shader. */
export async function matmulTuningVersion(ctx: GpuContext): Promise<string> {
  const plan = tunePlan(ctx);
  const measured = JSON.stringify({
    plan,
    configs: plan.candidates.map((name) => MATMUL_CONFIGS[name]),
    shader: shaderSource('matmul'),
  });
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(measured)));
  return `sha256:${Array.from(digest.subarray(0, 8), (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

/** Each candidate's median time on each shape, in linearForward's layout (weights [out, in], bias). */
export async function measureMatmulConfigs(ctx: GpuContext, plan = tunePlan(ctx)): Promise<MatmulMeasurement[]> {
  const created: Tensor[] = [];
  const tensor = (shape: number[], label: string) => {
    const t = ctx.tensor(shape, label);
    created.push(t);
    return t;
  };
  try {
    const operands = plan.shapes.map((shape) => ({
      shape,
      x: tensor([shape.rows, shape.inFeatures], 'tune x'),
      weight: tensor([shape.outFeatures, shape.inFeatures], 'tune weight'),
      bias: tensor([shape.outFeatures], 'tune bias'),
      y: tensor([shape.rows, shape.outFeatures], 'tune y'),
    }));
    type Operands = (typeof operands)[number];
    const variants = plan.arithmetics.flatMap((arithmetic) =>
      plan.candidates.map((config) => ({ arithmetic, config })),
    );
    type Variant = (typeof variants)[number];
    const product = ({ arithmetic, config }: Variant, { shape, x, weight, bias, y }: Operands) =>
      matmul(ctx, x, weight, y, {
        m: shape.rows,
        n: shape.outFeatures,
        k: shape.inFeatures,
        transposeB: true,
        bias,
        config: MATMUL_CONFIGS[config],
        arithmetic,
      });
    // Every pipeline compiles here, untimed.
    for (const variant of variants) for (const o of operands) product(variant, o);
    await ctx.sync();
    const samples = variants.map(() => operands.map((): number[] => []));
    for (let sample = 0; sample < plan.samples; sample++) {
      for (const [v, variant] of variants.entries()) {
        for (const [s, o] of operands.entries()) {
          const { wallMs, gpuMs } = await ctx.time(() => {
            for (let i = 0; i < plan.productsPerSample; i++) product(variant, o);
          });
          samples[v][s].push((gpuMs ?? wallMs) / plan.productsPerSample);
        }
      }
    }
    return variants.flatMap((variant, v) =>
      operands.map(({ shape }, s) => ({ ...variant, shape, ms: median(samples[v][s]) })),
    );
  } finally {
    for (const t of created) t.destroy();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The candidate with the lowest total time over the shapes in `arithmetic` (the first measured, on a tie), and that time. */
export function fastestMatmulConfig(
  measurements: readonly MatmulMeasurement[],
  arithmetic: Arithmetic = 'f32',
): { config: MatmulConfigName; totalMs: number } {
  const totals = new Map<MatmulConfigName, number>();
  for (const { config, ms } of measurements.filter((m) => m.arithmetic === arithmetic))
    totals.set(config, (totals.get(config) ?? 0) + ms);
  if (!totals.size) throw new RangeError(`fastestMatmulConfig: no measurements in ${arithmetic}`);
  const [config, totalMs] = [...totals].reduce((best, next) => (next[1] < best[1] ? next : best));
  return { config, totalMs };
}

/** The tuning's configurations and f16's time ratio, from its measurements (fastestMatmulConfig). */
export function tuningChoices(
  measurements: readonly MatmulMeasurement[],
  plan: TunePlan,
): Pick<MatmulTuning, 'config' | 'f16'> {
  const f32 = fastestMatmulConfig(measurements, 'f32');
  if (!plan.arithmetics.includes('f16')) return { config: f32.config };
  const f16 = fastestMatmulConfig(measurements, 'f16');
  return { config: f32.config, f16: { config: f16.config, timeRatio: f16.totalMs / f32.totalMs } };
}

const f16TimeRatios = new WeakMap<GpuContext, number | null>();

/** Every matmul on ctx runs the tuning's configuration of its arithmetic. */
function useTuning(ctx: GpuContext, tuning: Pick<MatmulTuning, 'config' | 'f16'>): void {
  useMatmulConfig(ctx, MATMUL_CONFIGS[tuning.config], 'f32');
  if (tuning.f16) useMatmulConfig(ctx, MATMUL_CONFIGS[tuning.f16.config], 'f16');
  f16TimeRatios.set(ctx, tuning.f16?.timeRatio ?? null);
}

/**
 * f16 products' time over f32's in the tune on ctx (below 1: f16 is faster), or null: not tuned, or the
 * device has no shader-f16.
 */
export function f16TimeRatioOf(ctx: GpuContext): number | null {
  return f16TimeRatios.get(ctx) ?? null;
}

/** `value` as a tuning for this adapter and version whose choice is among this adapter's candidates, else null. */
function validTuning(value: unknown, adapter: string, version: string, plan: TunePlan): MatmulTuning | null {
  if (typeof value !== 'object' || value === null) return null;
  const tuning = value as Partial<MatmulTuning>;
  const f16Fits = plan.arithmetics.includes('f16')
    ? plan.candidates.includes(tuning.f16?.config as MatmulConfigName) && tuning.f16!.timeRatio > 0
    : tuning.f16 === undefined;
  const fits =
    tuning.adapter === adapter &&
    tuning.version === version &&
    plan.candidates.includes(tuning.config as MatmulConfigName) &&
    f16Fits &&
    Array.isArray(tuning.measurements);
  return fits ? (tuning as MatmulTuning) : null;
}

/**
 * Chooses the matmul configuration for every product on ctx: a cached tuning of this adapter and
 * version if `cached` holds one (anything else in it, such as other adapters' tunings or damaged
 * records, is passed over), else a tune now. A tune that fails leaves the table's configuration, except
 * for a lost device, which is thrown.
 */
export async function tuneMatmul(ctx: GpuContext, cached: readonly unknown[] = []): Promise<MatmulChoice> {
  const plan = tunePlan(ctx);
  const adapter = tuningAdapter(ctx);
  const version = await matmulTuningVersion(ctx);
  const hit = cached.map((entry) => validTuning(entry, adapter, version, plan)).find((tuning) => tuning !== null);
  if (hit) {
    useTuning(ctx, hit);
    return { source: 'cached', config: hit.config, tuning: hit };
  }
  const started = performance.now();
  try {
    const measurements = await measureMatmulConfigs(ctx, plan);
    const choices = tuningChoices(measurements, plan);
    useTuning(ctx, choices);
    const milliseconds = Math.round(performance.now() - started);
    const tuning = { adapter, version, ...choices, measurements, milliseconds, measuredAt: Date.now() };
    return { source: 'tuned', config: choices.config, tuning };
  } catch (error) {
    if (error instanceof DeviceLostError || ctx.isLost) throw error;
    const config = matmulConfigName(matmulConfigFor(ctx.adapterName)) as MatmulConfigName;
    return { source: 'table', config, reason: error instanceof Error ? error.message : String(error) };
  }
}
