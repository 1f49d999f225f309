import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import type { Tensor } from '../../src/gpu/tensor';
import {
  AttentionScratch,
  attentionBackward,
  attentionForward,
  type AttentionShape,
} from '../../src/kernels/attention';
import { createNodeGpuContext } from '../../src/node/gpu';
import { expectClose } from '../helpers/compare';
import { centralDifferenceGradient, dot } from '../helpers/finite-difference';
import { useF16Gpu, useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import * as reference from '../reference/attention';

// Inputs are uniform in [-1, 1], so every result is O(1) and f32 error is absolute: sums of at most
// 77 keys x 64 dimensions err by at most ~1e-6 here (worst seen: 9e-7 on dv). atol 1e-5 leaves 10x.
const TOLERANCE = { rtol: 1e-4, atol: 1e-5 };
// Probabilities are at most 1 and come from one exp of a score that f32 gets to ~1e-7 (worst seen 1e-7).
const PROBS_TOLERANCE = { rtol: 1e-5, atol: 1e-6 };

const ctx = await useGpu();
const scratch = new AttentionScratch(ctx);
const f16 = await useF16Gpu();

function shapeOf(batch: number, seqLen: number, heads: number, headDim: number, causal: boolean): AttentionShape {
  return { batch, seqLen, heads, headDim, causal, scale: headDim ** -0.5 };
}

function describeShape({ batch, seqLen, heads, headDim, causal }: AttentionShape): string {
  return `${causal ? 'causal' : 'full'}, batch ${batch}, seqLen ${seqLen}, heads ${heads}, headDim ${headDim}`;
}

function tokenCount({ batch, seqLen, heads, headDim }: AttentionShape): number {
  return batch * seqLen * heads * headDim;
}

/** Seeded q, k, v and dout on the host and the GPU, and GPU tensors for every result. */
function setUp(gpu: GpuContext, shape: AttentionShape, seed: number, inputScale = 1) {
  const size = tokenCount(shape);
  const [q, k, v, dout] = [0, 1, 2, 3].map((i) => randomArray(size, seed + i, inputScale));
  const tokenShape = [shape.batch, shape.seqLen, shape.heads * shape.headDim];
  const input = (label: string, data: Float32Array) => gpu.tensor(tokenShape, label, data);
  const output = (label: string) => gpu.tensor(tokenShape, label);
  const tensors = {
    q: input('q', q),
    k: input('k', k),
    v: input('v', v),
    dout: input('dout', dout),
    out: output('out'),
    dq: output('dq'),
    dk: output('dk'),
    dv: output('dv'),
    probs: gpu.tensor([shape.batch, shape.heads, shape.seqLen, shape.seqLen], 'probs'),
  };
  const destroy = () => Object.values(tensors).forEach((t: Tensor) => t.destroy());
  return { host: { q, k, v, dout }, tensors, destroy };
}

/** Future keys must get exactly zero probability, not merely a small one. */
function expectCausalZeros(probs: Float32Array, { seqLen }: AttentionShape): void {
  for (let row = 0; row < probs.length / seqLen; row++) {
    const query = row % seqLen;
    for (let key = query + 1; key < seqLen; key++) {
      const value = probs[row * seqLen + key];
      if (value !== 0) expect.fail(`probs row ${row}: future key ${key} has ${value}`);
    }
  }
}

describe('attention kernels', () => {
  // Threads work in blocks of 4 positions x 4 dimensions: seqLen 1, 5, 17, 50 and headDim 10 leave
  // partial blocks, and seqLen 1 has one key per query (so its softmax gradient is zero).
  const shapes: AttentionShape[] = [];
  for (const causal of [false, true]) {
    for (const batch of [1, 3]) {
      for (const seqLen of [1, 5, 17, 50]) {
        for (const heads of [1, 3]) {
          for (const headDim of [8, 12]) shapes.push(shapeOf(batch, seqLen, heads, headDim, causal));
        }
      }
    }
    shapes.push(shapeOf(2, 17, 3, 10, causal)); // headDim not a multiple of 4
  }
  shapes.push(shapeOf(1, 50, 12, 64, false)); // one ViT-B/32 image
  shapes.push(shapeOf(1, 77, 8, 64, true)); // one CLIP text sequence

  shapes.forEach((shape, index) => {
    it(`forward and backward match float64, ${describeShape(shape)}`, async () => {
      const { host, tensors: t, destroy } = setUp(ctx, shape, 100 * index);
      attentionForward(ctx, t.q, t.k, t.v, t.out, t.probs, shape);
      attentionBackward(ctx, t.dout, t.q, t.k, t.v, t.probs, t.dq, t.dk, t.dv, shape, scratch);
      const [out, probs, dq, dk, dv] = await ctx.readMany([t.out, t.probs, t.dq, t.dk, t.dv]);
      const forward = reference.attentionForward(host.q, host.k, host.v, shape);
      const backward = reference.attentionBackward(host.dout, host.q, host.k, host.v, shape);
      expectClose(probs, forward.probs, { ...PROBS_TOLERANCE, label: 'probs' });
      if (shape.causal) expectCausalZeros(probs, shape);
      expectClose(out, forward.out, { ...TOLERANCE, label: 'out' });
      expectClose(dq, backward.dq, { ...TOLERANCE, label: 'dq' });
      expectClose(dk, backward.dk, { ...TOLERANCE, label: 'dk' });
      expectClose(dv, backward.dv, { ...TOLERANCE, label: 'dv' });
      destroy();
    });
  });

  // The backward against central differences of the float64 forward, independent of the reference
  // backward. Float64 differences are exact to ~1e-9 here, so the f32 tolerance above applies. A scale
  // other than headDim^-0.5 checks that forward and backward both apply it; headDim 3 is a partial block.
  for (const causal of [false, true]) {
    it(`backward matches finite differences, ${causal ? 'causal' : 'full'}`, async () => {
      const shape: AttentionShape = { batch: 2, seqLen: 4, heads: 2, headDim: 3, causal, scale: 0.7 };
      const { host, tensors: t, destroy } = setUp(ctx, shape, 7);
      attentionForward(ctx, t.q, t.k, t.v, t.out, t.probs, shape);
      attentionBackward(ctx, t.dout, t.q, t.k, t.v, t.probs, t.dq, t.dk, t.dv, shape, scratch);
      const [dq, dk, dv] = await ctx.readMany([t.dq, t.dk, t.dv]);
      const loss = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) =>
        dot(reference.attentionForward(q, k, v, shape).out, host.dout);
      const numeric = {
        dq: centralDifferenceGradient((q) => loss(q, host.k, host.v), host.q),
        dk: centralDifferenceGradient((k) => loss(host.q, k, host.v), host.k),
        dv: centralDifferenceGradient((v) => loss(host.q, host.k, v), host.v),
      };
      expectClose(dq, numeric.dq, { ...TOLERANCE, label: 'dq vs finite differences' });
      expectClose(dk, numeric.dk, { ...TOLERANCE, label: 'dk vs finite differences' });
      expectClose(dv, numeric.dv, { ...TOLERANCE, label: 'dv vs finite differences' });
      destroy();
    });
  }

  it('backward with accumulate adds to the gradients already there', async () => {
    const shape = shapeOf(2, 9, 3, 8, true);
    const { host, tensors: t, destroy } = setUp(ctx, shape, 11);
    const [dqBefore, dkBefore, dvBefore] = [20, 21, 22].map((seed) => randomArray(tokenCount(shape), seed));
    ctx.upload(t.dq, dqBefore);
    ctx.upload(t.dk, dkBefore);
    ctx.upload(t.dv, dvBefore);
    attentionForward(ctx, t.q, t.k, t.v, t.out, t.probs, shape);
    attentionBackward(ctx, t.dout, t.q, t.k, t.v, t.probs, t.dq, t.dk, t.dv, shape, scratch, { accumulate: true });
    const [dq, dk, dv] = await ctx.readMany([t.dq, t.dk, t.dv]);
    const expected = reference.attentionBackward(host.dout, host.q, host.k, host.v, shape);
    expectClose(
      dq,
      expected.dq.map((g, i) => g + dqBefore[i]),
      { ...TOLERANCE, label: 'accumulated dq' },
    );
    expectClose(
      dk,
      expected.dk.map((g, i) => g + dkBefore[i]),
      { ...TOLERANCE, label: 'accumulated dk' },
    );
    expectClose(
      dv,
      expected.dv.map((g, i) => g + dvBefore[i]),
      { ...TOLERANCE, label: 'accumulated dv' },
    );
    destroy();
  });

  // Inputs of +-16 give scores up to 277, and exp(89) already overflows f32: only a softmax that
  // subtracts the row maximum survives. A score of 277 carries an f32 rounding error of ~2e-5, which
  // exp turns into a relative error of that size in probs (worst seen 1e-5): rtol 1e-4. Values of
  // +-16 scale the same relative error in out.
  it('softmax stays finite and accurate for large scores', async () => {
    const shape = shapeOf(1, 17, 2, 8, false);
    const { host, tensors: t, destroy } = setUp(ctx, shape, 31, 16);
    attentionForward(ctx, t.q, t.k, t.v, t.out, t.probs, shape);
    const [out, probs] = await ctx.readMany([t.out, t.probs]);
    const expected = reference.attentionForward(host.q, host.k, host.v, shape);
    expectClose(probs, expected.probs, { rtol: 1e-4, atol: 1e-9, label: 'probs' });
    expectClose(out, expected.out, { rtol: 1e-4, atol: 1e-4, label: 'out' });
    destroy();
  });

  // The backward's d(q·k) scratch is shared by every backward of its owner and grows on demand; growing must not destroy
  // it under a backward that was recorded but not yet submitted.
  it('a backward recorded before a larger one keeps its results', async () => {
    const fresh = await createNodeGpuContext();
    const growing = new AttentionScratch(fresh);
    try {
      const small = shapeOf(1, 5, 2, 8, false);
      const large = shapeOf(2, 20, 3, 8, true);
      const runs = [small, large].map((shape, i) => ({ shape, ...setUp(fresh, shape, 40 + 10 * i) }));
      for (const { shape, tensors: t } of runs) {
        attentionForward(fresh, t.q, t.k, t.v, t.out, t.probs, shape);
        attentionBackward(fresh, t.dout, t.q, t.k, t.v, t.probs, t.dq, t.dk, t.dv, shape, growing);
      }
      for (const { shape, host, tensors: t } of runs) {
        const [dq, dk, dv] = await fresh.readMany([t.dq, t.dk, t.dv]);
        const expected = reference.attentionBackward(host.dout, host.q, host.k, host.v, shape);
        expectClose(dq, expected.dq, { ...TOLERANCE, label: `dq, ${describeShape(shape)}` });
        expectClose(dk, expected.dk, { ...TOLERANCE, label: `dk, ${describeShape(shape)}` });
        expectClose(dv, expected.dv, { ...TOLERANCE, label: `dv, ${describeShape(shape)}` });
      }
      await fresh.sync();
    } finally {
      fresh.destroy();
    }
  });

  it('rejects tensors of the wrong size, naming them', () => {
    const shape = shapeOf(1, 4, 2, 8, false);
    const tokens = ctx.tensor([1, 4, 16], 'tokens');
    const wrongK = ctx.tensor([1, 5, 16], 'k');
    const probs = ctx.tensor([1, 2, 4, 4], 'probs');
    const wrongProbs = ctx.tensor([1, 2, 4, 5], 'probs');
    expect(() => attentionForward(ctx, tokens, wrongK, tokens, tokens, probs, shape)).toThrow(
      /attentionForward: k has shape \[1, 5, 16\] \(80 elements\), expected \[1, 4, 16\] \(64 elements\)/,
    );
    expect(() =>
      attentionBackward(ctx, tokens, tokens, tokens, tokens, wrongProbs, tokens, tokens, tokens, shape, scratch),
    ).toThrow(
      /attentionBackward: probs has shape \[1, 2, 4, 5\] \(40 elements\), expected \[1, 2, 4, 4\] \(32 elements\)/,
    );
    expect(() => attentionForward(ctx, tokens, tokens, tokens, tokens, probs, { ...shape, seqLen: 0 })).toThrow(
      /seqLen must be a positive integer/,
    );
    [tokens, wrongK, probs, wrongProbs].forEach((t) => t.destroy());
  });
});

// The 'f16' precision's attention, on a device with shader-f16 (Mesa's lavapipe where there is no GPU).
// Each product's operands are rounded to half (up to 2u each, u = 2^-11) and the product too (u), then
// added in f32: a result errs by at most 5u of the sum of its terms' absolute values, O(1) with these
// inputs (a row of probs sums to 1), and the scores' error reaches probs through the softmax. Worst
// seen on lavapipe: 1.1e-4 on probs, 5.8e-4 on out, 2.1e-4 on dq and dk, 7.3e-4 on dv (77 queries);
// f32 errs by 1e-6. These leave over 10 times that; a misplaced term moves a result by order 1.
const F16_TOLERANCE = { rtol: 0, atol: 1e-2 };
const F16_PROBS_TOLERANCE = { rtol: 0, atol: 1e-3 };
describe.skipIf(typeof f16 === 'string')(
  `attention in f16 arithmetic${typeof f16 === 'string' ? ` (skipped: ${f16})` : ''}`,
  () => {
    const gpu = f16 as GpuContext;
    const f16Scratch = new AttentionScratch(gpu);
    const arithmetic = 'f16';
    const shapes = [shapeOf(3, 17, 3, 12, false), shapeOf(1, 5, 1, 10, true), shapeOf(1, 77, 8, 64, true)];
    for (const [index, shape] of shapes.entries()) {
      it(`forward and backward match float64, ${describeShape(shape)}`, async () => {
        const { host, tensors: t, destroy } = setUp(gpu, shape, 500 + 100 * index);
        attentionForward(gpu, t.q, t.k, t.v, t.out, t.probs, shape, { arithmetic });
        attentionBackward(gpu, t.dout, t.q, t.k, t.v, t.probs, t.dq, t.dk, t.dv, shape, f16Scratch, { arithmetic });
        const [out, probs, dq, dk, dv] = await gpu.readMany([t.out, t.probs, t.dq, t.dk, t.dv]);
        const forward = reference.attentionForward(host.q, host.k, host.v, shape);
        const backward = reference.attentionBackward(host.dout, host.q, host.k, host.v, shape);
        expectClose(probs, forward.probs, { ...F16_PROBS_TOLERANCE, label: 'probs' });
        if (shape.causal) expectCausalZeros(probs, shape);
        expectClose(out, forward.out, { ...F16_TOLERANCE, label: 'out' });
        expectClose(dq, backward.dq, { ...F16_TOLERANCE, label: 'dq' });
        expectClose(dk, backward.dk, { ...F16_TOLERANCE, label: 'dk' });
        expectClose(dv, backward.dv, { ...F16_TOLERANCE, label: 'dv' });
        // It rounds: further from float64 than f32 arithmetic may be.
        const worst = Math.max(...Array.from(out, (x, i) => Math.abs(x - forward.out[i])));
        expect(worst).toBeGreaterThan(TOLERANCE.atol);
        destroy();
      });
    }
  },
);
