import { describe, expect, it } from 'vitest';
import { adamwUpdate, sgdUpdate, type AdamWSettings } from '../../src/kernels/adamw';
import { expectClose } from '../helpers/compare';
import { useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import * as reference from '../reference/adamw';

// |param| < 1 moves by up to lr = 1e-2 a step. Each f32 step rounds param to 6e-8 and the update,
// a handful of f32 operations, to ~1e-6 of 1e-2: after 6 steps ~4e-7 at most for |param| ~ 1.
// 1e-6 relative plus 1e-7 absolute allows that and still fails a wrong bias correction or decay,
// which moves param by ~1e-3 and ~1e-3 respectively.
const PARAM_TOLERANCE = { rtol: 1e-6, atol: 1e-7 };
// m sums terms (1 - beta1) g ~ 2.5e-2 of either sign: a few ulps of those, ~1e-8, where they cancel.
// v sums positive terms, so its error stays relative, also at ~1e-20 for the tiny gradients.
const M_TOLERANCE = { rtol: 1e-5, atol: 1e-8 };
const V_TOLERANCE = { rtol: 1e-5, atol: 0 };
const STEPS = 6;

const ctx = await useGpu();

/** Gradients for one step: random, with a few near-zero ones (where eps dominates sqrt(v)) and exact zeros. */
function gradientsForStep(count: number, step: number): Float32Array {
  return randomArray(count, 100 + step).map((g, i) => (i % 7 === 3 ? g * 1e-9 : i % 11 === 5 ? 0 : g));
}

describe('AdamW', () => {
  const cases: { name: string; count: number; settings: Omit<AdamWSettings, 'step'> }[] = [
    {
      name: 'one parameter',
      count: 1,
      settings: { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, gradScale: 0.25 },
    },
    {
      name: 'with weight decay and gradScale',
      count: 1000,
      settings: { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, gradScale: 0.25 },
    },
    {
      name: 'without weight decay, other betas',
      count: 777,
      settings: { lr: 3e-3, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0 },
    },
  ];
  for (const { name, count, settings } of cases) {
    it(`matches the float64 reference over ${STEPS} steps, ${name} (${count})`, async () => {
      const initial = randomArray(count, count);
      const param = ctx.tensor([count], 'param', initial);
      const grad = ctx.tensor([count], 'grad');
      const m = ctx.tensor([count], 'm');
      const v = ctx.tensor([count], 'v');
      const expected = { param: Float64Array.from(initial), m: new Float64Array(count), v: new Float64Array(count) };
      for (let step = 1; step <= STEPS; step++) {
        const gradients = gradientsForStep(count, step);
        ctx.upload(grad, gradients);
        adamwUpdate(ctx, param, grad, m, v, { ...settings, step });
        reference.adamwStep(expected, gradients, { gradScale: 1, ...settings, step });
      }
      const [paramGpu, mGpu, vGpu] = await ctx.readMany([param, m, v]);
      expectClose(mGpu, expected.m, { ...M_TOLERANCE, label: 'm' });
      expectClose(vGpu, expected.v, { ...V_TOLERANCE, label: 'v' });
      expectClose(paramGpu, expected.param, { ...PARAM_TOLERANCE, label: 'param' });
      [param, grad, m, v].forEach((t) => t.destroy());
    });
  }

  it('rejects a step below 1 and mismatched state', () => {
    const param = ctx.tensor([4], 'param');
    const state = ctx.tensor([4], 'm');
    const shortV = ctx.tensor([3], 'v');
    const settings = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    expect(() => adamwUpdate(ctx, param, state, state, state, { ...settings, step: 0 })).toThrow(
      /step must be an integer from 1/,
    );
    expect(() => adamwUpdate(ctx, param, state, state, shortV, { ...settings, step: 1 })).toThrow(
      /v has shape \[3\], expected 4 elements/,
    );
  });
});

describe('SGD', () => {
  it('matches the float64 reference over several steps, with gradScale', async () => {
    const count = 300;
    const initial = randomArray(count, 1);
    const param = ctx.tensor([count], 'param', initial);
    const grad = ctx.tensor([count], 'grad');
    const expected = Float64Array.from(initial);
    for (let step = 1; step <= 3; step++) {
      const gradients = randomArray(count, 10 + step);
      ctx.upload(grad, gradients);
      sgdUpdate(ctx, param, grad, 0.05, 0.5);
      reference.sgdStep(expected, gradients, 0.05, 0.5);
    }
    // Three f32 multiply-subtracts on |param| < 1.1: a few ulps of 1.
    expectClose(await ctx.read(param), expected, { rtol: 0, atol: 3e-7, label: 'param' });
  });
});
