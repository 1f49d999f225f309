import { describe, expect, it } from 'vitest';
import { layerNormBackward, layerNormForward } from '../../src/kernels/layernorm';
import { expectClose } from '../helpers/compare';
import { centralDifferenceGradient, dot } from '../helpers/finite-difference';
import { useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import * as reference from '../reference/layernorm';

const EPS = 1e-5;
// Inputs sit on an offset of 3 (|x| < 5), so x - mean carries ~ulp(5) = 5e-7 of absolute error into
// every output and gradient, plus a few ulps from the f32 reductions over C (or over rows for
// dWeight, dBias). Worst seen: 7e-7. 1e-5 leaves >10x headroom. The float64 finite differences are
// exact to ~1e-9, so the same budget holds against them.
const TOLERANCE = { rtol: 1e-5, atol: 1e-5 };

const ctx = await useGpu();

function layerNormInputs(rows: number, columns: number, seed: number) {
  return {
    x: randomArray(rows * columns, seed, 2).map((v) => v + 3),
    weight: randomArray(columns, seed + 1, 0.5).map((v) => v + 1),
    bias: randomArray(columns, seed + 2),
    dout: randomArray(rows * columns, seed + 3),
  };
}

describe('layer norm kernels', () => {
  // One row; C = 1 (zero variance); C below, just past and far past the 256-wide workgroup,
  // none a multiple of it except 1024 (CLIP L/14's hidden size).
  const shapes: [number, number][] = [
    [1, 768],
    [6, 1],
    [3, 3],
    [5, 33],
    [2, 1000],
    [2, 1024],
  ];
  for (const [rows, columns] of shapes) {
    it(`forward and backward, ${rows} x ${columns}`, async () => {
      const data = layerNormInputs(rows, columns, rows * 1000 + columns);
      const x = ctx.tensor([rows, columns], 'x', data.x);
      const weight = ctx.tensor([columns], 'weight', data.weight);
      const bias = ctx.tensor([columns], 'bias', data.bias);
      const dout = ctx.tensor([rows, columns], 'dout', data.dout);
      const out = ctx.tensor([rows, columns], 'out');
      const mean = ctx.tensor([rows], 'mean');
      const rstd = ctx.tensor([rows], 'rstd');
      const dx = ctx.tensor([rows, columns], 'dx');
      const dWeight = ctx.tensor([columns], 'dWeight');
      const dBias = ctx.tensor([columns], 'dBias');
      layerNormForward(ctx, x, weight, bias, out, mean, rstd, EPS);
      layerNormBackward(ctx, dout, x, weight, mean, rstd, dx, { dWeight, dBias });
      const [outGpu, meanGpu, rstdGpu, dxGpu, dWeightGpu, dBiasGpu] = await ctx.readMany([
        out,
        mean,
        rstd,
        dx,
        dWeight,
        dBias,
      ]);

      const expected = reference.layerNorm(data.x, data.weight, data.bias, EPS);
      expectClose(outGpu, expected.out, { ...TOLERANCE, label: 'out' });
      // mean ~3 is good to a few ulps (worst seen 3e-7); rstd reaches 1/sqrt(eps) = 316 when C = 1, so relative.
      expectClose(meanGpu, expected.mean, { rtol: 1e-6, atol: 1e-6, label: 'mean' });
      expectClose(rstdGpu, expected.rstd, { rtol: 1e-5, atol: 0, label: 'rstd' });

      const gradients = reference.layerNormBackward(data.dout, data.x, data.weight, EPS);
      expectClose(dxGpu, gradients.dx, { ...TOLERANCE, label: 'dx' });
      expectClose(dWeightGpu, gradients.dWeight, { ...TOLERANCE, label: 'dWeight' });
      expectClose(dBiasGpu, gradients.dBias, { ...TOLERANCE, label: 'dBias' });

      // Against central differences of the float64 forward: independent of the reference backward.
      const loss = (xs: ArrayLike<number>, ws: ArrayLike<number>, bs: ArrayLike<number>) =>
        dot(reference.layerNorm(xs, ws, bs, EPS).out, data.dout);
      const numericDx = centralDifferenceGradient((v) => loss(v, data.weight, data.bias), data.x);
      const numericDWeight = centralDifferenceGradient((v) => loss(data.x, v, data.bias), data.weight);
      const numericDBias = centralDifferenceGradient((v) => loss(data.x, data.weight, v), data.bias);
      expectClose(dxGpu, numericDx, { ...TOLERANCE, label: 'dx vs finite differences' });
      expectClose(dWeightGpu, numericDWeight, { ...TOLERANCE, label: 'dWeight vs finite differences' });
      expectClose(dBiasGpu, numericDBias, { ...TOLERANCE, label: 'dBias vs finite differences' });
      [x, weight, bias, dout, out, mean, rstd, dx, dWeight, dBias].forEach((t) => t.destroy());
    });
  }

  it('accumulates into dx, dWeight and dBias', async () => {
    const [rows, columns] = [3, 40];
    const data = layerNormInputs(rows, columns, 7);
    const initialDx = randomArray(rows * columns, 8);
    const initialDWeight = randomArray(columns, 9);
    const initialDBias = randomArray(columns, 10);
    const x = ctx.tensor([rows, columns], 'x', data.x);
    const weight = ctx.tensor([columns], 'weight', data.weight);
    const bias = ctx.tensor([columns], 'bias', data.bias);
    const dout = ctx.tensor([rows, columns], 'dout', data.dout);
    const out = ctx.tensor([rows, columns], 'out');
    const mean = ctx.tensor([rows], 'mean');
    const rstd = ctx.tensor([rows], 'rstd');
    const dx = ctx.tensor([rows, columns], 'dx', initialDx);
    const dWeight = ctx.tensor([columns], 'dWeight', initialDWeight);
    const dBias = ctx.tensor([columns], 'dBias', initialDBias);
    layerNormForward(ctx, x, weight, bias, out, mean, rstd, EPS);
    layerNormBackward(ctx, dout, x, weight, mean, rstd, dx, { accumulate: true, dWeight, dBias });
    const [dxGpu, dWeightGpu, dBiasGpu] = await ctx.readMany([dx, dWeight, dBias]);
    const gradients = reference.layerNormBackward(data.dout, data.x, data.weight, EPS);
    const plus = (initial: Float32Array, added: Float64Array) => initial.map((v, i) => v + added[i]);
    expectClose(dxGpu, plus(initialDx, gradients.dx), { ...TOLERANCE, label: 'accumulated dx' });
    expectClose(dWeightGpu, plus(initialDWeight, gradients.dWeight), { ...TOLERANCE, label: 'accumulated dWeight' });
    expectClose(dBiasGpu, plus(initialDBias, gradients.dBias), { ...TOLERANCE, label: 'accumulated dBias' });
  });

  // The text tower normalises classes x 77 token rows at once (77,000 for 1000 classes), past the
  // 65,535 workgroups one grid dimension holds. SwiftShader needs ~90 s for it: real GPUs only.
  it.skipIf(/swiftshader/i.test(ctx.adapterName))('folds more than 65,535 rows into a 2-D grid', async () => {
    const [rows, columns] = [70_000, 2];
    // eps = 1 bounds rstd by 1: two nearly equal values in a row cannot amplify f32 rounding.
    const largeEps = 1;
    const data = layerNormInputs(rows, columns, 11);
    const x = ctx.tensor([rows, columns], 'x', data.x);
    const weight = ctx.tensor([columns], 'weight', data.weight);
    const bias = ctx.tensor([columns], 'bias', data.bias);
    const out = ctx.tensor([rows, columns], 'out');
    const mean = ctx.tensor([rows], 'mean');
    const rstd = ctx.tensor([rows], 'rstd');
    layerNormForward(ctx, x, weight, bias, out, mean, rstd, largeEps);
    const expected = reference.layerNorm(data.x, data.weight, data.bias, largeEps).out;
    expectClose(await ctx.read(out), expected, { ...TOLERANCE, label: 'out' });
  });

  it('rejects mismatched shapes', () => {
    const x = ctx.tensor([2, 8], 'x');
    const weight = ctx.tensor([8], 'weight');
    const shortBias = ctx.tensor([7], 'bias');
    const out = ctx.tensor([2, 8], 'out');
    const mean = ctx.tensor([2], 'mean');
    const rstd = ctx.tensor([2], 'rstd');
    expect(() => layerNormForward(ctx, x, weight, shortBias, out, mean, rstd, EPS)).toThrow(
      /bias has shape \[7\], expected 8 elements/,
    );
    expect(() => layerNormForward(ctx, x, ctx.tensor([4], 'w4'), shortBias, out, mean, rstd, EPS)).toThrow(
      /x has shape \[2, 8\], expected last dimension 4/,
    );
    expect(() => layerNormBackward(ctx, out, x, weight, mean, rstd, out, { dWeight: weight })).toThrow(
      /dWeight and dBias together/,
    );
  });
});
