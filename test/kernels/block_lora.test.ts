import { describe, expect, it } from 'vitest';
import { GpuContext } from '../../src/gpu/context';
import * as blockLora from '../../src/kernels/block_lora';
import { linearBackwardInput, linearForward } from '../../src/kernels/matmul';
import { planeSeed, type LoraDropout } from '../../src/kernels/dropout';
import { expectClose } from '../helpers/compare';
import { centralDifferenceGradient, dot } from '../helpers/finite-difference';
import { useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import * as reference from '../reference/block_lora';
import * as matmulReference from '../reference/matmul';
import type { BlockLoraInputs, BlockLoraShape } from '../reference/block_lora';

// Inputs are uniform in [-1, 1]; results reach about 40 (dA and dB sum 50 rows). The f32 kernels
// differ from float64 by rounding only: at most 5e-6 absolute over every case here (a few ulps of the
// largest values). atol 5e-5 leaves a 10x margin, and a wrong mask element or a missing term moves a
// result by ~0.1, far outside it. Central differences of the float64 forward are within 1e-7 of the
// exact gradient (the loss is linear in each of x, A_s and B_i: no truncation error, only the loss's
// rounding over a step of 2e-6), so they share the bounds.
const TOLERANCE = { rtol: 1e-5, atol: 5e-5 };

// d_in spans more than two passes of project's 64 threads, d_out more than two 32-column gradient
// tiles; neither is a multiple of either.
const D_IN = 150;
const D_OUT = 70;

const ctx = await useGpu();

interface Case {
  shape: BlockLoraShape;
  scale: number;
  dropout: LoraDropout;
}

interface CaseData {
  x: Float32Array;
  a: Float32Array;
  blocks: Float32Array;
  /** dL/dh */
  g: Float32Array;
  /** The frozen layer W0 [d_out, d_in] and bias, whose products the adapter's terms are added to. */
  weight: Float32Array;
  bias: Float32Array;
  /** What dx holds before the layer's backward (another layer's share): the backward adds to it. */
  dxBefore: Float32Array;
}

interface GpuResults {
  bSum: Float32Array;
  u: Float32Array;
  h: Float32Array;
  du: Float32Array;
  dA: Float32Array;
  dBlocks: Float32Array;
  dx: Float32Array;
}

function blockLoraCase(blocks: number, rank: number, rows: number, p: number): Case {
  const shape = { rows, dIn: D_IN, dOut: D_OUT, blockRank: rank / blocks, blocks };
  // CLIP-LoRA's scaling alpha / sqrt(r), alpha = 1; the seed is an arbitrary u32 above 2^31.
  return { shape, scale: 1 / Math.sqrt(rank), dropout: { p, seed: 0x9e3779b9 } };
}

function caseData({ rows, dIn, dOut, blockRank, blocks }: BlockLoraShape, seed: number): CaseData {
  return {
    x: randomArray(rows * dIn, seed),
    a: randomArray(blockRank * dIn, seed + 1),
    blocks: randomArray(blocks * dOut * blockRank, seed + 2),
    g: randomArray(rows * dOut, seed + 3),
    weight: randomArray(dOut * dIn, seed + 4),
    bias: randomArray(dOut, seed + 5),
    dxBefore: randomArray(rows * dIn, seed + 6),
  };
}

function referenceInputs(c: Case, data: CaseData): BlockLoraInputs {
  const dropFactors = reference.dropoutFactors(c.shape.rows * c.shape.dIn, c.dropout);
  return { shape: c.shape, x: data.x, a: data.a, blocks: data.blocks, scale: c.scale, dropFactors };
}

/**
 * The adapted linear layer forward then backward on the GPU: h = x W0^T + b + the adapter's term, and
 * dx = dxBefore + g W0 + the adapter's share. dA and dB start as garbage (they are overwritten). With
 * `plainLora` (n = 1 only) B itself is the up-projection, as a LoRA implementation would use it,
 * instead of the sum of one block.
 */
async function runGpu(c: Case, data: CaseData, plainLora = false, context: GpuContext = ctx): Promise<GpuResults> {
  const { rows, dIn, dOut, blockRank: b, blocks: n } = c.shape;
  const x = context.tensor([rows, dIn], 'x', data.x);
  const weight = context.tensor([dOut, dIn], 'weight', data.weight);
  const bias = context.tensor([dOut], 'bias', data.bias);
  const a = context.tensor([b, dIn], 'a', data.a);
  const blocks = context.tensor([n, dOut, b], 'blocks', data.blocks);
  const bSum = context.tensor([dOut, b], 'bSum', plainLora ? data.blocks : undefined);
  const u = context.tensor([rows, b], 'u');
  const h = context.tensor([rows, dOut], 'h', randomArray(rows * dOut, 97));
  const g = context.tensor([rows, dOut], 'g', data.g);
  const du = context.tensor([rows, b], 'du');
  const dA = context.tensor([b, dIn], 'dA', randomArray(b * dIn, 99));
  const dBlocks = context.tensor([n, dOut, b], 'dBlocks', randomArray(n * dOut * b, 98));
  const dx = context.tensor([rows, dIn], 'dx', data.dxBefore);
  if (!plainLora) {
    const table = new blockLora.BlockSumTable(context, [{ blocksOffset: 0, sumOffset: 0, blockSize: dOut * b }], n);
    blockLora.sumBlocks(context, blocks, bSum, table);
    table.destroy();
  }
  blockLora.loraDown(context, x, a, u, c.dropout);
  linearForward(context, x, weight, bias, h, { lowRank: blockLora.loraUp(u, bSum, c.scale) });
  blockLora.loraBackward(context, g, x, u, a, bSum, du, dA, dBlocks, c.scale, c.dropout);
  linearBackwardInput(context, g, weight, dx, {
    accumulate: true,
    lowRank: blockLora.loraInputGradient(du, a, c.dropout),
  });
  const outputs = [bSum, u, h, du, dA, dBlocks, dx];
  const [bSumGpu, uGpu, hGpu, duGpu, dAGpu, dBlocksGpu, dxGpu] = await context.readMany(outputs);
  [x, weight, bias, a, blocks, g, ...outputs].forEach((t) => t.destroy());
  return { bSum: bSumGpu, u: uGpu, h: hGpu, du: duGpu, dA: dAGpu, dBlocks: dBlocksGpu, dx: dxGpu };
}

/** The frozen layer's output x W0^T + b and its input gradient dxBefore + g W0, in float64. */
function frozenPath(c: Case, data: CaseData): { h: Float64Array; dx: Float64Array } {
  const { dIn, dOut } = c.shape;
  return {
    h: matmulReference.linearForward(data.x, data.weight, data.bias, dOut, dIn),
    dx: plus(data.dxBefore, matmulReference.linearBackwardInput(data.g, data.weight, dOut, dIn)),
  };
}

function plus(base: ArrayLike<number>, delta: ArrayLike<number>): Float64Array {
  return Float64Array.from(base, (v, i) => v + delta[i]);
}

function expectBitIdentical(actual: Float32Array, expected: Float32Array, label: string): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const actualBits = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const expectedBits = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const first = actualBits.findIndex((bits, i) => bits !== expectedBits[i]);
  if (first >= 0) expect.fail(`${label}[${first}] = ${actual[first]}, expected exactly ${expected[first]}`);
}

/** GPU forward and backward against the float64 reference. */
function expectMatchesReference(c: Case, data: CaseData, gpu: GpuResults): void {
  const inputs = referenceInputs(c, data);
  const forward = reference.blockLoraForward(inputs);
  const backward = reference.blockLoraBackward(inputs, data.g);
  const frozen = frozenPath(c, data);
  expectClose(gpu.bSum, forward.bSum, { ...TOLERANCE, label: 'bSum' });
  expectClose(gpu.u, forward.u, { ...TOLERANCE, label: 'u' });
  expectClose(gpu.h, plus(frozen.h, forward.delta), { ...TOLERANCE, label: 'h' });
  expectClose(gpu.du, backward.du, { ...TOLERANCE, label: 'du' });
  expectClose(gpu.dA, backward.dA, { ...TOLERANCE, label: 'dA' });
  expectClose(gpu.dBlocks, backward.dBlocks, { ...TOLERANCE, label: 'dBlocks' });
  expectClose(gpu.dx, plus(frozen.dx, backward.dx), { ...TOLERANCE, label: 'dx' });
}

describe('block_lora kernels', () => {
  for (const blocks of [1, 2, 4]) {
    for (const rows of [1, 7, 50]) {
      for (const p of [0, 0.25]) {
        const rank = 2 * blocks;
        it(`n = ${blocks} (r = ${rank}), ${rows} rows, dropout ${p}: forward and backward`, async () => {
          const c = blockLoraCase(blocks, rank, rows, p);
          const data = caseData(c.shape, 1000 * blocks + 10 * rows + 4 * p);
          const gpu = await runGpu(c, data);
          expectMatchesReference(c, data, gpu);

          // dL/dB_i is the same for every block: one reduction, copied bit for bit.
          const blockSize = D_OUT * c.shape.blockRank;
          const firstBlock = gpu.dBlocks.subarray(0, blockSize);
          for (let i = 1; i < blocks; i++) {
            expectBitIdentical(
              gpu.dBlocks.subarray(i * blockSize, (i + 1) * blockSize),
              firstBlock,
              `dB_${i + 1} vs dB_1`,
            );
          }

          // Backward against central differences of the float64 forward (the mask is fixed by the seed);
          // the small cases keep the float64 loops short.
          if (rows > 7) return;
          const inputs = referenceInputs(c, data);
          const loss = (changed: Partial<BlockLoraInputs>) =>
            dot(reference.blockLoraForward({ ...inputs, ...changed }).delta, data.g);
          const fdTolerance = { ...TOLERANCE, label: '' };
          expectClose(
            gpu.dx,
            plus(
              frozenPath(c, data).dx,
              centralDifferenceGradient((x) => loss({ x }), data.x),
            ),
            { ...fdTolerance, label: 'dx vs finite differences' },
          );
          expectClose(
            gpu.dA,
            centralDifferenceGradient((a) => loss({ a }), data.a),
            { ...fdTolerance, label: 'dA vs finite differences' },
          );
          expectClose(
            gpu.dBlocks,
            centralDifferenceGradient((b) => loss({ blocks: b }), data.blocks),
            { ...fdTolerance, label: 'dB_i vs finite differences' },
          );
        });
      }
    }
  }

  it('block rank above one chunk of 8 columns (n = 2, b = 12)', async () => {
    const c = blockLoraCase(2, 24, 7, 0.25);
    const data = caseData(c.shape, 7);
    expectMatchesReference(c, data, await runGpu(c, data));
  });

  it('the wide workgroups real GPUs get (tuning.ts) give the same results', async () => {
    // The same device under a GPU's name: 64 threads per row in project, 8 row lanes in weight_gradient,
    // the shared-memory matmul.
    const asRealGpu = new GpuContext(ctx.device, { adapterName: 'nvidia / any real GPU' });
    const c = blockLoraCase(2, 4, 50, 0.25);
    const data = caseData(c.shape, 23);
    expectMatchesReference(c, data, await runGpu(c, data, false, asRealGpu));
  });

  it('n = 1 is plain LoRA: identical outputs and gradients', async () => {
    const c = blockLoraCase(1, 4, 50, 0.25);
    const data = caseData(c.shape, 11);
    const asBlocks = await runGpu(c, data);
    const asLora = await runGpu(c, data, true);
    for (const key of Object.keys(asBlocks) as (keyof GpuResults)[]) {
      expectBitIdentical(asBlocks[key], asLora[key], `${key}: Block-LoRA n = 1 vs LoRA`);
    }
    // The same in float64, against the plain LoRA reference.
    const inputs = referenceInputs(c, data);
    const { rows, dIn, dOut, blockRank } = c.shape;
    const plain = reference.lora(
      {
        rows,
        dIn,
        dOut,
        rank: blockRank,
        x: data.x,
        a: data.a,
        b: data.blocks,
        scale: c.scale,
        dropFactors: inputs.dropFactors,
      },
      data.g,
    );
    const backward = reference.blockLoraBackward(inputs, data.g);
    expect(reference.blockLoraForward(inputs).delta).toEqual(plain.delta);
    expect(backward.dA).toEqual(plain.dA);
    expect(backward.dBlocks).toEqual(plain.dB);
    expect(backward.dx).toEqual(plain.dx);
    expectClose(asLora.h, plus(frozenPath(c, data).h, plain.delta), { ...TOLERANCE, label: 'h vs LoRA reference' });
  });

  it('reference: n blocks with shared A_s is rank-r LoRA with A_s repeated and B = [B_1 | ... | B_n]', () => {
    const c = blockLoraCase(4, 8, 7, 0.25);
    const data = caseData(c.shape, 13);
    const { rows, dIn, dOut, blockRank: b, blocks: n } = c.shape;
    const rank = n * b;
    const aRepeated = new Float64Array(rank * dIn);
    const bConcatenated = new Float64Array(dOut * rank);
    for (let i = 0; i < n; i++) {
      aRepeated.set(data.a, i * b * dIn);
      for (let o = 0; o < dOut; o++) {
        for (let j = 0; j < b; j++) bConcatenated[o * rank + i * b + j] = data.blocks[(i * dOut + o) * b + j];
      }
    }
    const inputs = referenceInputs(c, data);
    const plain = reference.lora(
      {
        rows,
        dIn,
        dOut,
        rank,
        x: data.x,
        a: aRepeated,
        b: bConcatenated,
        scale: c.scale,
        dropFactors: inputs.dropFactors,
      },
      data.g,
    );
    const backward = reference.blockLoraBackward(inputs, data.g);
    // Different summation orders in float64: agreement to 1e-12.
    const close = { rtol: 1e-12, atol: 1e-12 };
    expectClose(reference.blockLoraForward(inputs).delta, plain.delta, { ...close, label: 'delta' });
    expectClose(backward.dx, plain.dx, { ...close, label: 'dx' });
    // dL/dB_i is LoRA's dL/dB restricted to block i's columns; dL/dA_s is the sum of LoRA's dL/dA_i.
    const dBlocksFromLora = new Float64Array(n * dOut * b);
    const dASharedFromLora = new Float64Array(b * dIn);
    for (let i = 0; i < n; i++) {
      for (let o = 0; o < dOut; o++) {
        for (let j = 0; j < b; j++) dBlocksFromLora[(i * dOut + o) * b + j] = plain.dB[o * rank + i * b + j];
      }
      for (let k = 0; k < b * dIn; k++) dASharedFromLora[k] += plain.dA[i * b * dIn + k];
    }
    expectClose(backward.dBlocks, dBlocksFromLora, { ...close, label: 'dB_i' });
    expectClose(backward.dA, dASharedFromLora, { ...close, label: 'dA_s' });
  });

  it('sums the blocks of every adapted matrix in one dispatch, each in its place', async () => {
    // Three matrices of different d_out (b = 2, n = 3) at 64-element aligned places, as adapterLayout puts them.
    const n = 3;
    const b = 2;
    const blockSizes = [70 * b, 5 * b, 200 * b];
    const placements = [
      { blocksOffset: 0, sumOffset: 0, blockSize: blockSizes[0] },
      { blocksOffset: 448, sumOffset: 192, blockSize: blockSizes[1] },
      { blocksOffset: 512, sumOffset: 256, blockSize: blockSizes[2] },
    ];
    const blocksData = randomArray(512 + n * blockSizes[2], 31);
    const sumsBefore = randomArray(256 + blockSizes[2] + 5, 32);
    const flatBlocks = ctx.tensor([blocksData.length], 'flat blocks', blocksData);
    const flatSums = ctx.tensor([sumsBefore.length], 'flat sums', sumsBefore);
    const table = new blockLora.BlockSumTable(ctx, placements, n);
    blockLora.sumBlocks(ctx, flatBlocks, flatSums, table);
    const sums = await ctx.read(flatSums);
    const expected = Float64Array.from(sumsBefore);
    for (const { blocksOffset, sumOffset, blockSize } of placements) {
      const stacked = blocksData.subarray(blocksOffset, blocksOffset + n * blockSize);
      expected.set(
        reference.sumBlocks({ rows: 0, dIn: 0, dOut: blockSize / b, blockRank: b, blocks: n }, stacked),
        sumOffset,
      );
    }
    // Two f32 additions against float64: a few ulps of values below 3. Elements between places keep their values.
    expectClose(sums, expected, { rtol: 1e-6, atol: 1e-6, label: 'flat sums' });
    [flatBlocks, flatSums].forEach((t) => t.destroy());
    table.destroy();
  });

  it('dropout mask: the reference hash, element for element, at the requested rate', async () => {
    // With x = 1 and A_s = I, u = drop(x) A_s^T is the dropout factor of every element of x.
    const rows = 64;
    const width = 16;
    const ones = new Float32Array(rows * width).fill(1);
    const identity = new Float32Array(width * width).map((_, i) => (i % (width + 1) === 0 ? 1 : 0));
    const x = ctx.tensor([rows, width], 'x', ones);
    const a = ctx.tensor([width, width], 'identity', identity);
    const masks = [];
    for (const dropout of [
      { p: 0.25, seed: 12345 },
      { p: 0.25, seed: 12346 },
      { p: 0, seed: 12345 },
    ]) {
      const u = ctx.tensor([rows, width], 'u');
      blockLora.loraDown(ctx, x, a, u, dropout);
      const mask = await ctx.read(u);
      expectBitIdentical(
        mask,
        Float32Array.from(reference.dropoutFactors(rows * width, dropout)),
        `mask, seed ${dropout.seed}, p ${dropout.p}`,
      );
      masks.push(mask);
      u.destroy();
    }
    // Kept with probability 0.75: the standard deviation of the rate over 1024 elements is 0.014.
    const keptRate = masks[0].filter((v) => v !== 0).length / (rows * width);
    expect(Math.abs(keptRate - 0.75)).toBeLessThan(0.05);
    expect(masks[1]).not.toEqual(masks[0]);
    expect(masks[2].every((v) => v === 1)).toBe(true);
    x.destroy();
    a.destroy();
  });

  it("loraDownPlanes: q, k and v's down-projections in one dispatch, each with its own mask, as three loraDown calls give them", async () => {
    // Masks planeSeed(seed, i) apart, as dropoutFor seeds q, k and v; planes strided past their size.
    const [rows, dIn, b, count] = [37, 20, 3, 3];
    const dropout = { p: 0.25, seed: 0xc0ffee };
    const [aStride, uStride] = [b * dIn + 4, rows * b + 4];
    const xData = randomArray(rows * dIn, 90);
    const aData = randomArray(count * aStride, 91);
    const x = ctx.tensor([rows, dIn], 'x', xData);
    const a = ctx.tensor([aData.length], 'A_s planes', aData);
    const u = ctx.tensor([count * uStride], 'u planes');
    blockLora.loraDownPlanes(
      ctx,
      x,
      { tensor: a, stride: aStride, count },
      { tensor: u, stride: uStride, count },
      { dIn, b },
      dropout,
    );
    const fused = await ctx.read(u);
    for (let plane = 0; plane < count; plane++) {
      const planeDropout = { p: dropout.p, seed: planeSeed(dropout.seed, plane) };
      const planeA = aData.subarray(plane * aStride, plane * aStride + b * dIn);
      const single = ctx.tensor([rows, b], 'u');
      const aPlane = ctx.tensor([b, dIn], 'A_s', planeA);
      blockLora.loraDown(ctx, x, aPlane, single, planeDropout);
      const actual = fused.subarray(plane * uStride, plane * uStride + rows * b);
      expectBitIdentical(actual, await ctx.read(single), `plane ${plane} against loraDown`);
      // And against float64: u = drop(x) A_s^T.
      const factors = reference.dropoutFactors(rows * dIn, planeDropout);
      const dropped = Float64Array.from(xData, (v, i) => v * factors[i]);
      const expected = matmulReference.matmul(dropped, planeA, { m: rows, n: b, k: dIn, transposeB: true });
      const termSums = matmulReference.matmul(dropped.map(Math.abs), planeA.map(Math.abs), {
        m: rows,
        n: b,
        k: dIn,
        transposeB: true,
      });
      expectClose(actual, expected, {
        rtol: 0,
        atol: 3 * Math.sqrt(dIn) * 2 ** -24 * Math.max(...termSums),
        label: `plane ${plane}`,
      });
      [single, aPlane].forEach((t) => t.destroy());
    }
    [x, a, u].forEach((t) => t.destroy());
  });

  it('accumulate adds into dA and every dB_i', async () => {
    const c = blockLoraCase(2, 4, 7, 0.25);
    const data = caseData(c.shape, 17);
    const { rows, dIn, dOut, blockRank: b, blocks: n } = c.shape;
    const x = ctx.tensor([rows, dIn], 'x', data.x);
    const a = ctx.tensor([b, dIn], 'a', data.a);
    const bSum = ctx.tensor([dOut, b], 'bSum', Float32Array.from(reference.sumBlocks(c.shape, data.blocks)));
    const u = ctx.tensor([rows, b], 'u');
    const g = ctx.tensor([rows, dOut], 'g', data.g);
    const du = ctx.tensor([rows, b], 'du');
    const dA = ctx.tensor([b, dIn], 'dA');
    const dBlocks = ctx.tensor([n, dOut, b], 'dBlocks');
    blockLora.loraDown(ctx, x, a, u, c.dropout);
    blockLora.loraBackward(ctx, g, x, u, a, bSum, du, dA, dBlocks, c.scale, c.dropout);
    blockLora.loraBackward(ctx, g, x, u, a, bSum, du, dA, dBlocks, c.scale, c.dropout, { accumulate: true });
    const [dAGpu, dBlocksGpu] = await ctx.readMany([dA, dBlocks]);
    const backward = reference.blockLoraBackward(referenceInputs(c, data), data.g);
    expectClose(
      dAGpu,
      backward.dA.map((v) => 2 * v),
      { ...TOLERANCE, label: 'dA accumulated twice' },
    );
    expectClose(
      dBlocksGpu,
      backward.dBlocks.map((v) => 2 * v),
      { ...TOLERANCE, label: 'dBlocks accumulated twice' },
    );
    [x, a, bSum, u, g, du, dA, dBlocks].forEach((t) => t.destroy());
  });

  it('two runs give bit-identical results', async () => {
    const c = blockLoraCase(2, 4, 120, 0.25);
    const data = caseData(c.shape, 19);
    const first = await runGpu(c, data);
    const second = await runGpu(c, data);
    for (const key of Object.keys(first) as (keyof GpuResults)[]) expectBitIdentical(second[key], first[key], key);
  });

  it('rejects wrong shapes and invalid dropout', () => {
    const x = ctx.tensor([5, 6], 'x');
    const a = ctx.tensor([2, 7], 'a');
    const u = ctx.tensor([5, 2], 'u');
    const a6 = ctx.tensor([2, 6], 'a6');
    expect(() => blockLora.loraDown(ctx, x, a, u, { p: 0, seed: 0 })).toThrow(
      /loraDown: x has shape \[5, 6\], expected \[5, 7\]/,
    );
    expect(() => blockLora.loraDown(ctx, x, a6, u, { p: 1, seed: 0 })).toThrow(/dropout p must be in \[0, 1\)/);
    expect(() => blockLora.loraDown(ctx, x, a6, u, { p: 0.1, seed: -1 })).toThrow(/dropout seed must be a u32/);
    const table = new blockLora.BlockSumTable(ctx, [{ blocksOffset: 0, sumOffset: 0, blockSize: 7 }], 2);
    expect(() => blockLora.sumBlocks(ctx, a6, u, table)).toThrow(
      'sumBlocks: 2 blocks of 7 at 0 and their sum at 0 do not fit in a6 (12) and u (10)',
    );
    table.destroy();
    expect(() => blockLora.loraInputGradient(u, a6, { p: 1, seed: 0 })).toThrow(/dropout p must be in \[0, 1\)/);
    // The low-rank term must fit the product it is added to: u has 5 rows, y here 4.
    const x4 = ctx.tensor([4, 6], 'x4');
    const w = ctx.tensor([3, 6], 'w');
    const y = ctx.tensor([4, 3], 'y');
    const bSum = ctx.tensor([3, 2], 'bSum');
    expect(() => linearForward(ctx, x4, w, null, y, { lowRank: blockLora.loraUp(u, bSum, 1) })).toThrow(
      /matmul: low-rank thin "u" has shape \[5, 2\].*, expected \[m, rank\] = \[4, 2\]/,
    );
    [x, a, u, a6, x4, w, y, bSum].forEach((t) => t.destroy());
  });
});
