import { describe, expect, it } from 'vitest';
import * as elementwise from '../../src/kernels/elementwise';
import { expectClose } from '../helpers/compare';
import { centralDifferenceGradient, dot } from '../helpers/finite-difference';
import { useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import * as reference from '../reference/elementwise';

// f32 element-wise results differ from float64 by a few ulps of exp(): 1e-5 relative is ~100 ulps of headroom.
const TOLERANCE = { rtol: 1e-5, atol: 1e-6 };

const ctx = await useGpu();

describe('elementwise kernels', () => {
  // 1, a workgroup less one, and a size past one workgroup that is not a multiple of 256.
  for (const count of [1, 255, 1000]) {
    it(`quick_gelu forward and backward, ${count} elements`, async () => {
      const xData = randomArray(count, 1, 4);
      const doutData = randomArray(count, 2);
      const x = ctx.tensor([count], 'x', xData);
      const dout = ctx.tensor([count], 'dout', doutData);
      const out = ctx.tensor([count], 'out');
      const dx = ctx.tensor([count], 'dx');
      elementwise.activationForward(ctx, 'quick_gelu', x, out);
      elementwise.activationBackward(ctx, 'quick_gelu', x, dout, dx);
      const [outGpu, dxGpu] = await ctx.readMany([out, dx]);
      expectClose(outGpu, reference.quickGelu(xData), { ...TOLERANCE, label: 'quick_gelu' });
      expectClose(dxGpu, reference.quickGeluBackward(xData, doutData), { ...TOLERANCE, label: 'quick_gelu dx' });
      // The backward against central differences of the float64 forward: independent of the reference backward.
      const numeric = centralDifferenceGradient((v) => dot(reference.quickGelu(v), doutData), xData);
      expectClose(dxGpu, numeric, { rtol: 1e-4, atol: 1e-5, label: 'quick_gelu dx vs finite differences' });
      [x, dout, out, dx].forEach((t) => t.destroy());
    });
  }

  // gelu's erfc is a fit with relative error below 1.2e-7 (elementwise.wgsl), under f32's rounding of
  // exp, so the quick_gelu tolerance holds; gelu_tanh is exact arithmetic in f32. Inputs of +-12 reach
  // the tails, where x Phi(x) is down to 1e-32 and sigmoid's exp overflows to infinity on the far side.
  for (const activation of ['gelu', 'gelu_tanh'] as const) {
    for (const [count, range] of [
      [1, 4],
      [1000, 4],
      [300, 12],
    ] as const) {
      it(`${activation} forward and backward, ${count} elements in +-${range}`, async () => {
        const xData = randomArray(count, 3, range);
        const doutData = randomArray(count, 4);
        const { forward, backward } = reference.ACTIVATIONS[activation];
        const x = ctx.tensor([count], 'x', xData);
        const dout = ctx.tensor([count], 'dout', doutData);
        const out = ctx.tensor([count], 'out');
        const dx = ctx.tensor([count], 'dx');
        elementwise.activationForward(ctx, activation, x, out);
        elementwise.activationBackward(ctx, activation, x, dout, dx);
        const [outGpu, dxGpu] = await ctx.readMany([out, dx]);
        expectClose(outGpu, forward(xData), { ...TOLERANCE, label: activation });
        expectClose(dxGpu, backward(xData, doutData), { ...TOLERANCE, label: `${activation} dx` });
        const numeric = centralDifferenceGradient((v) => dot(forward(v), doutData), xData);
        expectClose(dxGpu, numeric, { rtol: 1e-4, atol: 1e-5, label: `${activation} dx vs finite differences` });
        [x, dout, out, dx].forEach((t) => t.destroy());
      });
    }
  }

  it('the float64 erfc reference matches tabulated values', () => {
    // Abramowitz and Stegun, table 7.1, and erfc(3), erfc(5) to 16 digits.
    const table: [number, number][] = [
      [0.5, 1 - 0.5204998778130465],
      [1, 1 - 0.8427007929497149],
      [-1, 1 + 0.8427007929497149],
      [2, 0.004677734981047266],
      [3, 2.209049699858544e-5],
      [5, 1.5374597944280349e-12],
    ];
    for (const [z, expected] of table) expect(Math.abs(reference.erfc(z) - expected) / expected).toBeLessThan(1e-14);
  });

  it('add, scale and in-place accumulation', async () => {
    const count = 777;
    const a = randomArray(count, 3);
    const b = randomArray(count, 4);
    const ta = ctx.tensor([count], 'a', a);
    const tb = ctx.tensor([count], 'b', b);
    const sum = ctx.tensor([count], 'sum');
    const scaled = ctx.tensor([count], 'scaled');
    elementwise.add(ctx, ta, tb, sum);
    elementwise.scale(ctx, ta, -2.5, scaled);
    elementwise.addScaledInPlace(ctx, tb, ta, 0.5);
    const [sumGpu, scaledGpu, accumulated] = await ctx.readMany([sum, scaled, tb]);
    expectClose(
      sumGpu,
      a.map((v, i) => v + b[i]),
      { rtol: 0, atol: 1e-6, label: 'add' },
    );
    expectClose(
      scaledGpu,
      a.map((v) => -2.5 * v),
      { rtol: 0, atol: 1e-6, label: 'scale' },
    );
    expectClose(
      accumulated,
      a.map((v, i) => b[i] + 0.5 * v),
      { rtol: 0, atol: 1e-6, label: 'add_scaled_inplace' },
    );
  });

  it('rejects tensors of different sizes', async () => {
    const a = ctx.tensor([4], 'a');
    const b = ctx.tensor([5], 'b');
    expect(() => elementwise.add(ctx, a, b, a)).toThrow(/add: b has shape \[5\], expected 4 elements \(as a\)/);
  });
});
