// The matmul autotune on a real adapter: it times every candidate on every shape of its plan, picks the
// lowest total of what it measured, and every product on the context then runs that configuration and
// still matches the float64 reference; a cached tuning of the adapter is used without measuring,
// records that are damaged, foreign or outdated are passed over, and a failed tune leaves the table's.

import { describe, expect, it, vi } from 'vitest';
import { DeviceLostError, GpuError } from '../../src/gpu/context';
import { adapterIdentity } from '../../src/gpu/device';
import { linearForward, MATMUL_CONFIGS, matmulConfigFor, matmulConfigOf } from '../../src/kernels/matmul';
import {
  f16TimeRatioOf,
  fastestMatmulConfig,
  matmulConfigName,
  matmulTuningVersion,
  shapeName,
  tuneMatmul,
  tunePlan,
  type MatmulChoice,
  type MatmulTuning,
} from '../../src/kernels/matmul-tune';
import type { GpuContext } from '../../src/gpu/context';
import { createNodeF16GpuContext, createNodeGpuContext } from '../../src/node/gpu';
import { expectClose } from '../helpers/compare';
import { useF16Gpu, useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import * as reference from '../reference/matmul';

const ctx = await useGpu();
const plan = tunePlan(ctx);
const f16 = await useF16Gpu();

function tuned(choice: MatmulChoice): MatmulTuning {
  if (choice.source === 'table') throw new Error(`the tune failed: ${choice.reason}`);
  return choice.tuning;
}

/** Total measured milliseconds per candidate, summed here from the records. */
function totals(tuning: MatmulTuning): Map<string, number> {
  const sums = new Map<string, number>();
  for (const { config, ms } of tuning.measurements) sums.set(config, (sums.get(config) ?? 0) + ms);
  return sums;
}

describe('matmul autotune', () => {
  let first: MatmulTuning;

  it('times every candidate on every shape and runs the one with the lowest total', async () => {
    const choice = await tuneMatmul(ctx, []);
    expect(choice.source).toBe('tuned');
    first = tuned(choice);
    expect(first.adapter).toBe(adapterIdentity(ctx.device.adapterInfo));
    expect(first.version).toBe(await matmulTuningVersion(ctx));
    expect(plan.arithmetics).toEqual(['f32']); // SwiftShader: no shader-f16
    expect(first.measurements.map((m) => `${m.arithmetic} ${m.config} ${shapeName(m.shape)}`)).toEqual(
      plan.candidates.flatMap((config) => plan.shapes.map((shape) => `f32 ${config} ${shapeName(shape)}`)),
    );
    expect(first.f16).toBeUndefined();
    expect(f16TimeRatioOf(ctx)).toBeNull();
    for (const { ms } of first.measurements) expect(ms).toBeGreaterThan(0);
    const sums = totals(first);
    expect(sums.get(first.config)).toBe(Math.min(...sums.values()));
    expect(choice.config).toBe(first.config);
    expect(matmulConfigOf(ctx)).toBe(MATMUL_CONFIGS[first.config]);
    // The rule itself, on the same measurements with one candidate made the fastest (every other one first).
    for (const favourite of plan.candidates) {
      const favoured = first.measurements.map((m) => (m.config === favourite ? { ...m, ms: m.ms / 1000 } : m));
      expect(fastestMatmulConfig(favoured).config).toBe(favourite);
    }
  });

  it('products on the tuned context match the float64 reference', async () => {
    expect(matmulConfigOf(ctx)).toBe(MATMUL_CONFIGS[first.config]);
    // Sizes off every tile and vector width, and an aligned CLIP-like shape (vec4 loads).
    const shapes: [number, number, number][] = [
      [13, 37, 41],
      [50, 64, 96],
    ];
    const runs = shapes.map(([rows, inFeatures, outFeatures], i) => {
      const xData = randomArray(rows * inFeatures, 10 * i + 1);
      const wData = randomArray(outFeatures * inFeatures, 10 * i + 2);
      const bData = randomArray(outFeatures, 10 * i + 3);
      const y = ctx.tensor([rows, outFeatures], 'y');
      linearForward(
        ctx,
        ctx.tensor([rows, inFeatures], 'x', xData),
        ctx.tensor([outFeatures, inFeatures], 'weight', wData),
        ctx.tensor([outFeatures], 'bias', bData),
        y,
      );
      const options = { m: rows, n: outFeatures, k: inFeatures, transposeB: true };
      const expected = reference.matmul(xData, wData, { ...options, bias: bData });
      const abs = (values: Float32Array) => Float64Array.from(values, Math.abs);
      const termSums = reference.matmul(abs(xData), abs(wData), { ...options, bias: abs(bData) });
      return { y, expected, termSums, k: inFeatures };
    });
    const results = await ctx.readMany(runs.map((r) => r.y));
    runs.forEach(({ expected, termSums, k }, i) => {
      // f32 sums of k + 1 terms against float64: the bound test/kernels/matmul.test.ts derives.
      const atol = 3 * Math.sqrt(k + 2) * 2 ** -24 * Math.max(...termSums);
      expectClose(results[i], expected, { rtol: 0, atol, label: `${shapes[i].join('x')}` });
    });
  });

  it('a cached tuning of this adapter is used without measuring', async () => {
    // Another candidate than the table's, so that running it shows the cache decided.
    const table = matmulConfigName(matmulConfigFor(ctx.adapterName));
    const other = plan.candidates.find((name) => name !== table) ?? plan.candidates[0];
    const fresh = await createNodeGpuContext();
    try {
      const time = vi.spyOn(fresh, 'time');
      const choice = await tuneMatmul(fresh, [
        { ...first, adapter: 'other / gpu' },
        { ...first, config: other },
      ]);
      expect(choice).toMatchObject({ source: 'cached', config: other });
      expect(time).not.toHaveBeenCalled();
      expect(matmulConfigOf(fresh)).toBe(MATMUL_CONFIGS[other]);
    } finally {
      fresh.destroy();
    }
  });

  it('passes over damaged, foreign and outdated records, and tunes again', async () => {
    const notACandidate = Object.keys(MATMUL_CONFIGS).find((name) => !(plan.candidates as string[]).includes(name));
    const records: unknown[] = [
      null,
      'direct8x8',
      42,
      { config: first.config },
      { ...first, adapter: 'other vendor / other gpu' },
      { ...first, version: 'sha256:0000000000000000' },
      { ...first, config: 'tiled99x99' },
      { ...first, measurements: 'none' },
      ...(notACandidate ? [{ ...first, config: notACandidate }] : []),
    ];
    const fresh = await createNodeGpuContext();
    try {
      const choice = await tuneMatmul(fresh, records);
      expect(choice.source).toBe('tuned');
      expect(matmulConfigOf(fresh)).toBe(MATMUL_CONFIGS[tuned(choice).config]);
    } finally {
      fresh.destroy();
    }
  });

  it('a failed tune leaves the configuration of the table and says why; a lost device is thrown', async () => {
    // The failure is injected where a GPU reports one, at the timed samples; the products before them run for real.
    const fresh = await createNodeGpuContext();
    try {
      vi.spyOn(fresh, 'time').mockRejectedValueOnce(new GpuError('GPU validation failed: injected'));
      const choice = await tuneMatmul(fresh, []);
      expect(choice).toEqual({
        source: 'table',
        config: matmulConfigName(matmulConfigFor(fresh.adapterName)),
        reason: 'GPU validation failed: injected',
      });
      expect(matmulConfigOf(fresh)).toBe(matmulConfigFor(fresh.adapterName));
      vi.spyOn(fresh, 'time').mockRejectedValueOnce(new DeviceLostError('GPU device lost: injected'));
      await expect(tuneMatmul(fresh, [])).rejects.toThrow(DeviceLostError);
    } finally {
      fresh.destroy();
    }
  });
});

describe.skipIf(typeof f16 === 'string')(
  `matmul autotune on a device with shader-f16${typeof f16 === 'string' ? ` (skipped: ${f16})` : ''}`,
  () => {
    it("times every candidate in f32 and in f16, runs each arithmetic's fastest, and records f16's time over f32's", async () => {
      const gpu = f16 as GpuContext;
      const plan16 = tunePlan(gpu);
      expect(plan16.arithmetics).toEqual(['f32', 'f16']);
      const tuning = tuned(await tuneMatmul(gpu, []));
      expect(tuning.measurements.map((m) => `${m.arithmetic} ${m.config} ${shapeName(m.shape)}`)).toEqual(
        plan16.arithmetics.flatMap((arithmetic) =>
          plan16.candidates.flatMap((config) =>
            plan16.shapes.map((shape) => `${arithmetic} ${config} ${shapeName(shape)}`),
          ),
        ),
      );
      const total = (arithmetic: string, config: string) =>
        tuning.measurements
          .filter((m) => m.arithmetic === arithmetic && m.config === config)
          .reduce((sum, m) => sum + m.ms, 0);
      const fastest = (arithmetic: string) => Math.min(...plan16.candidates.map((c) => total(arithmetic, c)));
      expect(total('f32', tuning.config)).toBe(fastest('f32'));
      expect(total('f16', tuning.f16!.config)).toBe(fastest('f16'));
      expect(tuning.f16!.timeRatio).toBeCloseTo(fastest('f16') / fastest('f32'), 12);
      expect(matmulConfigOf(gpu, 'f16')).toBe(MATMUL_CONFIGS[tuning.f16!.config]);
      expect(f16TimeRatioOf(gpu)).toBe(tuning.f16!.timeRatio);

      // Cached, both configurations and the ratio come back; a record without f16's is passed over here.
      const fresh = (await createNodeF16GpuContext()) as GpuContext;
      try {
        const time = vi.spyOn(fresh, 'time');
        const f16Config = plan16.candidates.find((name) => name !== tuning.f16!.config)!;
        const cached = { ...tuning, f16: { config: f16Config, timeRatio: 0.5 } };
        const { f16: _, ...withoutF16 } = tuning;
        expect(await tuneMatmul(fresh, [withoutF16, cached])).toMatchObject({ source: 'cached', tuning: cached });
        expect(time).not.toHaveBeenCalled();
        expect(matmulConfigOf(fresh, 'f16')).toBe(MATMUL_CONFIGS[f16Config]);
        expect(f16TimeRatioOf(fresh)).toBe(0.5);
      } finally {
        fresh.destroy();
      }
    });
  },
);
