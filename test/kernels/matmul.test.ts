import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import type { Tensor } from '../../src/gpu/tensor';
import { loraInputGradientPlanes, loraUpPlanes } from '../../src/kernels/block_lora';
import { planeSeed } from '../../src/kernels/dropout';
import * as kernels from '../../src/kernels/matmul';
import { expectClose } from '../helpers/compare';
import { centralDifferenceGradient, dot } from '../helpers/finite-difference';
import { useF16Gpu, useGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import { dropoutFactors } from '../reference/block_lora';
import { roundedToHalf } from '../reference/half';
import * as reference from '../reference/matmul';

const ctx = await useGpu();
const f16 = await useF16Gpu();

// Tolerance of an f32 product against the float64 reference. Inputs are exact in both; what differs
// is rounding in the f32 sums: each of the k + 2 additions (k products, bias, old out) rounds by at
// most eps/2 of a partial sum, itself at most S = the sum of |terms| of that output. Independent
// roundings of both signs add like a random walk, standard deviation about 0.3 sqrt(k) eps S
// (Higham, Accuracy and Stability of Numerical Algorithms, ch. 3). 3 sqrt(k + 2) eps S is about ten
// of those, so it holds for every output (the worst seen is a third of it), while one wrong or
// missing term, of order S / k, still exceeds it 5 times over for any k up to 10^4.
const F32_EPSILON = 2 ** -24;
function accumulationTolerance(k: number, termSums: Float64Array): { rtol: number; atol: number } {
  const largestTermSum = termSums.reduce((max, v) => Math.max(max, v), 0);
  return { rtol: 0, atol: 3 * Math.sqrt(k + 2) * F32_EPSILON * largestTermSum };
}

// Tolerance of products in f16 arithmetic (the 'f16' precision), against float64 on the inputs as
// given. Each term a_i b_i is off by at most 8u |a_i b_i| (u = 2^-11, half precision's unit roundoff):
// a and b converted to half, up to 2u each (WGSL lets a conversion round to either neighbour), the
// product rounded, u, and its share of the 4-term half-precision partial sum, 3u. Errors of both
// signs, independent between terms, add like a random walk: 3 * 8u * sqrt(sum of squared terms) is
// over five standard deviations. The f32 sums of the partial sums add accumulationTolerance.
const HALF_UNIT_ROUNDOFF = 2 ** -11;
function f16ArithmeticTolerance(squaredTermSums: Float64Array): number {
  const largest = squaredTermSums.reduce((max, v) => Math.max(max, v), 0);
  return 3 * 8 * HALF_UNIT_ROUNDOFF * Math.sqrt(largest);
}

const abs = (values: ArrayLike<number>) => Float64Array.from(values, Math.abs);
const squares = (values: ArrayLike<number>) => Float64Array.from(values, (v) => v * v);

interface Case extends Omit<kernels.MatmulOptions, 'bias' | 'config'> {
  bias?: boolean;
  /** b stored in half precision: the reference multiplies by the rounded values, in float64. */
  halfB?: boolean;
}

// Runs one product on the GPU and compares it with the reference; returns the check to run after readback.
function runCase(context: GpuContext, label: string, c: Case, seed: number, config?: kernels.MatmulConfig) {
  const batch = c.batch ?? 1;
  const aData = randomArray(batch * c.m * c.k, seed);
  const bGiven = randomArray((c.broadcastB ? 1 : batch) * c.k * c.n, seed + 1);
  const bData = c.halfB ? roundedToHalf(bGiven) : bGiven;
  const biasData = c.bias ? randomArray(c.n, seed + 2) : null;
  const initialData = c.accumulate ? randomArray(batch * c.m * c.n, seed + 3) : null;
  const a = context.tensor([aData.length], 'a', aData);
  const b = context.tensor([bData.length], 'b', bGiven, c.halfB ? 'f16' : 'f32');
  const bias = biasData && context.tensor([c.n], 'bias', biasData);
  const out = context.tensor([batch * c.m * c.n], 'out', initialData ?? undefined);
  const { halfB: _, ...options } = c;
  kernels.matmul(context, a, b, out, { ...options, bias, config });
  const referenceOptions: reference.ReferenceMatmulOptions = { ...options, bias: biasData, initial: initialData };
  const expected = reference.matmul(aData, bData, referenceOptions);
  const termSums = reference.matmul(abs(aData), abs(bData), {
    ...referenceOptions,
    alpha: Math.abs(c.alpha ?? 1),
    bias: biasData && abs(biasData),
    initial: initialData && abs(initialData),
  });
  const tolerance = accumulationTolerance(c.k, termSums);
  if (c.arithmetic === 'f16') {
    const { bias: _, initial: __, ...product } = referenceOptions;
    const alpha = (c.alpha ?? 1) ** 2;
    tolerance.atol += f16ArithmeticTolerance(reference.matmul(squares(aData), squares(bData), { ...product, alpha }));
  }
  return {
    out,
    check(actual: Float32Array) {
      expectClose(actual, expected, { ...tolerance, label });
      [a, b, out, ...(bias ? [bias] : [])].forEach((t) => t.destroy());
    },
  };
}

async function runCases(context: GpuContext, cases: [string, Case][], config?: kernels.MatmulConfig): Promise<void> {
  const runs = cases.map(([label, c], i) => runCase(context, label, c, 100 * i + 1, config));
  const results = await context.readMany(runs.map((r) => r.out));
  runs.forEach((r, i) => r.check(results[i]));
}

// m x n x k: one element, one row, one column, sizes off every multiple of 4 and of the workgroup
// tile, long k, and shapes whose contiguous dimensions are multiples of 4 for the vec4 paths in
// each layout (the kernel picks vec4 loads per operand from transposition and alignment).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 9, 37],
  [13, 1, 6],
  [17, 33, 5],
  [7, 3, 3072],
  [12, 20, 7],
  [36, 64, 68],
  [513, 9, 33],
  [5, 513, 12],
];

// The shared-memory kernel compiles slowly on SwiftShader (seconds per pipeline, growing with the
// workgroup), so it gets two shape sets that need one pipeline each in any layout: every size odd
// (scalar loads) or every size a multiple of 4 (vec4 loads). Its block loads and epilogue are the
// direct kernel's, tested above; what is its own is the staging, which these cover: partial tiles,
// k-slices with a partial last step, many slices, more blocks to stage than threads. A small
// workgroup (4 x 2 threads: tiles of 8 x 16, k-slice 16) keeps it quick; the real-GPU tile shape is
// tested once more below.
const SHARED_SCALAR_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [17, 33, 5],
  [7, 3, 3071],
  [9, 17, 37],
];
const SHARED_VEC4_SHAPES: [number, number, number][] = [
  [4, 4, 4],
  [20, 36, 12],
  [8, 4, 3072],
  [36, 64, 68],
];
const smallSharedConfig: kernels.MatmulConfig = { kernel: 'shared', workgroupX: 4, workgroupY: 2, kBlocks: 4 };
const realGpuConfig = kernels.matmulConfigFor('nvidia / any real GPU');

function shapeCases(shapes: [number, number, number][], options: Partial<Case> = {}): [string, Case][] {
  return shapes.map(([m, n, k]) => [`${m}x${n}x${k}`, { m, n, k, ...options }]);
}

describe('matmul', () => {
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      const layout = `${transposeA ? 'aT' : 'a'} ${transposeB ? 'bT' : 'b'}`;
      it(`${layout}: awkward and aligned shapes`, async () => {
        await runCases(ctx, shapeCases(SHAPES, { transposeA, transposeB }));
      });
      it(`${layout}: shared-memory kernel, scalar and vec4 loads`, async () => {
        const shapes = [...SHARED_SCALAR_SHAPES, ...SHARED_VEC4_SHAPES];
        await runCases(ctx, shapeCases(shapes, { transposeA, transposeB }), smallSharedConfig);
      });
    }
  }

  // Frozen weights in half precision: the products equal float64 ones with the weights rounded to
  // half, within the same f32 accumulation tolerance (widening a half to f32 is exact).
  for (const transposeB of [false, true]) {
    const layout = transposeB ? 'bT (linearForward)' : 'b (linearBackwardInput)';
    it(`b in half precision, ${layout}: awkward and aligned shapes, scalar and vec4 loads, both kernels`, async () => {
      await runCases(ctx, shapeCases(SHAPES, { transposeB, halfB: true }));
      const shapes = [...SHARED_SCALAR_SHAPES, ...SHARED_VEC4_SHAPES];
      await runCases(ctx, shapeCases(shapes, { transposeB, halfB: true, bias: true }), smallSharedConfig);
    });
  }

  it.skipIf(ctx.hasF16Arithmetic)('refuses f16 arithmetic on a device without shader-f16', () => {
    const x = ctx.tensor([4], 'x');
    expect(() => kernels.matmul(ctx, x, x, x, { m: 2, n: 2, k: 2, arithmetic: 'f16' })).toThrow(
      /matmul.matmul_direct: f16 arithmetic needs the adapter's shader-f16 feature, which google \/ swiftshader does not offer/,
    );
    x.destroy();
  });

  it('shared-memory kernel with the tile shape real GPUs use (linearForward layout, bias)', async () => {
    expect(realGpuConfig.kernel).toBe('shared');
    await runCases(
      ctx,
      shapeCases(
        [
          [70, 100, 40],
          [33, 129, 3072],
        ],
        { transposeB: true, bias: true },
      ),
      realGpuConfig,
    );
  });

  it('batch, broadcast b, bias, alpha, accumulate', async () => {
    await runCases(ctx, [
      ['batch 3', { m: 5, n: 6, k: 7, batch: 3, transposeA: true }],
      ['batch 4, broadcast b', { m: 9, n: 8, k: 12, batch: 4, broadcastB: true, transposeB: true }],
      ['bias', { m: 6, n: 11, k: 9, bias: true }],
      ['alpha', { m: 10, n: 7, k: 20, alpha: -0.125 }],
      ['accumulate', { m: 3, n: 5, k: 4, accumulate: true }],
      [
        'everything at once',
        { m: 19, n: 10, k: 14, batch: 2, alpha: 0.5, bias: true, accumulate: true, broadcastB: true, transposeA: true },
      ],
    ]);
  });

  it('adds a low-rank term with dropout as it stores the product (Block-LoRA), in both kernels and both weight layouts', async () => {
    // linearForward's layout with a bias and accumulation: every term of the epilogue at once.
    const [m, n, k, rank, scale] = [19, 37, 24, 3, 0.7];
    const dropout = { p: 0.25, seed: 0xdeadbeef };
    const factors = dropoutFactors(m * n, dropout);
    const layouts = {
      'W [n, rank]': { weightWidthStride: rank, weightRankStride: 1 },
      'W [rank, n]': { weightWidthStride: 1, weightRankStride: n },
    };
    for (const [kernel, config] of [
      ['direct', undefined],
      ['shared', smallSharedConfig],
    ] as const) {
      for (const [layout, strides] of Object.entries(layouts)) {
        const data = [m * k, n * k, n, m * n, m * rank, n * rank].map((size, i) => randomArray(size, 40 + i));
        const [aData, bData, biasData, initialData, thinData, weightData] = data;
        const [a, b, bias, out, thin, weight] = data.map((values, i) =>
          ctx.tensor([values.length], `operand ${i}`, values),
        );
        kernels.matmul(ctx, a, b, out, {
          m,
          n,
          k,
          transposeB: true,
          bias,
          accumulate: true,
          config,
          lowRank: { thin, weight, rank, ...strides, scale, dropout },
        });
        const options = { m, n, k, transposeB: true };
        const expected = reference.matmul(aData, bData, { ...options, bias: biasData, initial: initialData });
        const termSums = reference.matmul(abs(aData), abs(bData), {
          ...options,
          bias: abs(biasData),
          initial: abs(initialData),
        });
        for (let row = 0; row < m; row++) {
          for (let col = 0; col < n; col++) {
            let sum = 0;
            let absSum = 0;
            for (let j = 0; j < rank; j++) {
              const term =
                thinData[row * rank + j] * weightData[col * strides.weightWidthStride + j * strides.weightRankStride];
              sum += term;
              absSum += Math.abs(term);
            }
            expected[row * n + col] += scale * factors[row * n + col] * sum;
            termSums[row * n + col] += scale * factors[row * n + col] * absSum;
          }
        }
        expectClose(await ctx.read(out), expected, {
          ...accumulationTolerance(k + rank, termSums),
          label: `${kernel} kernel, ${layout}`,
        });
        [a, b, bias, out, thin, weight].forEach((t) => t.destroy());
      }
    }
  });

  it('linearForwardPlanes: q, k and v of one input in one dispatch, planes apart, each with its bias and low-rank term, in both kernels', async () => {
    // Planes strided past their size (as slices must start aligned), so a stride mistaken for the size
    // shows; by 4, so that the vec4 loads stay on (d is a multiple of 4).
    const [rows, d, rank, scale, count] = [9, 12, 2, 0.7, 3];
    const pad = (size: number) => size + 4;
    const [wStride, biasStride, yStride, uStride, sumStride] = [d * d, d, rows * d, rows * rank, d * rank].map(pad);
    for (const [kernel, config] of [
      ['direct', undefined],
      ['shared', smallSharedConfig],
    ] as const) {
      const xData = randomArray(rows * d, 60);
      const [wData, biasData, uData, sumData] = [wStride, biasStride, uStride, sumStride].map((stride, i) =>
        randomArray(count * stride, 61 + i),
      );
      const [x, w, bias, u, sums] = [xData, wData, biasData, uData, sumData].map((values, i) =>
        ctx.tensor([values.length], `operand ${i}`, values),
      );
      const y = ctx.tensor([count * yStride], 'y');
      const planes = (tensor: Tensor, stride: number) => ({ tensor, stride, count });
      const lowRank = loraUpPlanes(planes(u, uStride), planes(sums, sumStride), { dOut: d, b: rank }, scale);
      if (config) {
        kernels.matmul(ctx, x, w, y, {
          m: rows,
          n: d,
          k: d,
          batch: count,
          transposeB: true,
          bias,
          lowRank,
          config,
          batchStrides: { a: 0, b: wStride, bias: biasStride, out: yStride },
        });
      } else {
        kernels.linearForwardPlanes(
          ctx,
          x,
          planes(w, wStride),
          planes(bias, biasStride),
          planes(y, yStride),
          { out: d, in: d },
          { lowRank },
        );
      }
      const actual = await ctx.read(y);
      for (let plane = 0; plane < count; plane++) {
        const slice = (values: Float32Array, stride: number, size: number) =>
          values.subarray(plane * stride, plane * stride + size);
        const weight = slice(wData, wStride, d * d);
        const planeBias = slice(biasData, biasStride, d);
        const expected = reference.linearForward(xData, weight, planeBias, d, d);
        const termSums = reference.linearForward(abs(xData), abs(weight), abs(planeBias), d, d);
        const planeU = slice(uData, uStride, rows * rank);
        const planeSums = slice(sumData, sumStride, d * rank);
        for (let row = 0; row < rows; row++) {
          for (let col = 0; col < d; col++) {
            for (let j = 0; j < rank; j++) {
              const term = scale * planeU[row * rank + j] * planeSums[col * rank + j];
              expected[row * d + col] += term;
              termSums[row * d + col] += Math.abs(term);
            }
          }
        }
        expectClose(actual.subarray(plane * yStride, plane * yStride + rows * d), expected, {
          ...accumulationTolerance(d + rank, termSums),
          label: `${kernel} kernel, plane ${plane}`,
        });
        // Between planes nothing is written.
        expect([...actual.subarray(plane * yStride + rows * d, (plane + 1) * yStride)]).toEqual([0, 0, 0, 0]);
      }
      [x, w, bias, u, sums, y].forEach((t) => t.destroy());
    }
  });

  it("linearBackwardInputPlanes: dx of q, k and v in one dispatch, summing each plane's product and low-rank term with its own mask, in both kernels", async () => {
    const [rows, dOut, dIn, rank, count] = [9, 8, 12, 2, 3];
    const pad = (size: number) => size + 4;
    const [dyStride, wStride, duStride, aStride] = [rows * dOut, dOut * dIn, rows * rank, rank * dIn].map(pad);
    const dropout = { p: 0.25, seed: 0xdeadbeef };
    for (const [kernel, config] of [
      ['direct', undefined],
      ['shared', smallSharedConfig],
    ] as const) {
      const [dyData, wData, duData, aData] = [dyStride, wStride, duStride, aStride].map((stride, i) =>
        randomArray(count * stride, 70 + i),
      );
      const [dy, w, du, a] = [dyData, wData, duData, aData].map((values, i) =>
        ctx.tensor([values.length], `operand ${i}`, values),
      );
      const dx = ctx.tensor([rows * dIn], 'dx');
      const planes = (tensor: Tensor, stride: number) => ({ tensor, stride, count });
      const lowRank = loraInputGradientPlanes(planes(du, duStride), planes(a, aStride), { dIn, b: rank }, dropout);
      if (config) {
        kernels.matmul(ctx, dy, w, dx, {
          m: rows,
          n: dIn,
          k: dOut,
          kPlanes: count,
          lowRank,
          config,
          batchStrides: { a: dyStride, b: wStride },
        });
      } else {
        kernels.linearBackwardInputPlanes(
          ctx,
          planes(dy, dyStride),
          planes(w, wStride),
          dx,
          { out: dOut, in: dIn },
          { lowRank },
        );
      }
      const expected = new Float64Array(rows * dIn);
      const termSums = new Float64Array(rows * dIn);
      for (let plane = 0; plane < count; plane++) {
        const slice = (values: Float32Array, stride: number, size: number) =>
          values.subarray(plane * stride, plane * stride + size);
        const [planeDy, planeW] = [slice(dyData, dyStride, rows * dOut), slice(wData, wStride, dOut * dIn)];
        const product = reference.linearBackwardInput(planeDy, planeW, dOut, dIn);
        const productSums = reference.linearBackwardInput(abs(planeDy), abs(planeW), dOut, dIn);
        // Each plane's mask is its own adapter's: planeSeed(seed, plane), as dropoutFor gives q, k and v.
        const factors = dropoutFactors(rows * dIn, { p: dropout.p, seed: planeSeed(dropout.seed, plane) });
        const [planeDu, planeA] = [slice(duData, duStride, rows * rank), slice(aData, aStride, rank * dIn)];
        for (let row = 0; row < rows; row++) {
          for (let col = 0; col < dIn; col++) {
            let sum = 0;
            let absSum = 0;
            for (let j = 0; j < rank; j++) {
              const term = planeDu[row * rank + j] * planeA[j * dIn + col];
              sum += term;
              absSum += Math.abs(term);
            }
            const at = row * dIn + col;
            expected[at] += product[at] + factors[at] * sum;
            termSums[at] += productSums[at] + factors[at] * absSum;
          }
        }
      }
      expectClose(await ctx.read(dx), expected, {
        ...accumulationTolerance(count * (dOut + rank), termSums),
        label: `${kernel} kernel`,
      });
      [dy, w, du, a, dx].forEach((t) => t.destroy());
    }
  });

  it('rejects planes that do not fit their tensor', () => {
    const x = ctx.tensor([4, 8], 'x');
    const w = ctx.tensor([3 * 64], 'w');
    const bias = ctx.tensor([3 * 8], 'bias');
    const y = ctx.tensor([3 * 32], 'y');
    const planes = (tensor: Tensor, stride: number) => ({ tensor, stride, count: 3 });
    expect(() =>
      kernels.linearForwardPlanes(ctx, x, planes(w, 64), planes(bias, 8), planes(y, 33), { out: 8, in: 8 }),
    ).toThrow(/out "y" has 96 elements; 3 entries of 32, one every 33, need 98/);
    expect(() =>
      kernels.linearForwardPlanes(
        ctx,
        x,
        planes(w, 64),
        planes(bias, 8),
        { tensor: y, stride: 32, count: 2 },
        { out: 8, in: 8 },
      ),
    ).toThrow(/3 weight planes, 3 bias and 2 output planes/);
    [x, w, bias, y].forEach((t) => t.destroy());
  });

  it('splits a grid past 65,535 workgroups per dimension into several dispatches', async () => {
    // One thread per workgroup keeps 70,000 workgroups cheap.
    const oneThread: kernels.MatmulConfig = { kernel: 'direct', workgroupX: 1, workgroupY: 1, kBlocks: 0 };
    await runCases(ctx, [['70,000 batch entries', { m: 1, n: 2, k: 3, batch: 70_000 }]], oneThread);
  });

  it('rejects tensors whose sizes do not match the options', () => {
    const a = ctx.tensor([2, 3], 'x');
    const b = ctx.tensor([3, 4], 'w');
    const out = ctx.tensor([2, 5], 'y');
    expect(() => kernels.matmul(ctx, a, b, out, { m: 2, n: 4, k: 3 })).toThrow(/out "y" has shape \[2, 5\]/);
    expect(() => kernels.matmul(ctx, a, b, out, { m: 2, n: 5, k: 3 })).toThrow(/b "w" has shape \[3, 4\]/);
    expect(() => kernels.matmul(ctx, a, b, out, { m: 0, n: 5, k: 3 })).toThrow(/m must be a positive integer/);
    [a, b, out].forEach((t) => t.destroy());
  });
});

// rows x in -> out: sizes off multiples of 4 with x given as [2, 3, in] (rows come from x's size),
// and one row with in and out multiples of 4 (the vec4 paths of all three products).
const LINEAR_SHAPES = [
  { batchShape: [2, 3], inFeatures: 5, outFeatures: 7 },
  { batchShape: [1], inFeatures: 12, outFeatures: 8 },
];

for (const { batchShape, inFeatures, outFeatures } of LINEAR_SHAPES) {
  const rows = batchShape.reduce((a, b) => a * b, 1);
  describe(`nn.Linear, ${rows} rows x ${inFeatures} in -> ${outFeatures} out`, () => {
    const xData = randomArray(rows * inFeatures, 11);
    const weightData = randomArray(outFeatures * inFeatures, 12);
    const biasData = randomArray(outFeatures, 13);
    const dyData = randomArray(rows * outFeatures, 14);

    function upload(): Record<'x' | 'weight' | 'bias' | 'dy', Tensor> {
      return {
        x: ctx.tensor([...batchShape, inFeatures], 'x', xData),
        weight: ctx.tensor([outFeatures, inFeatures], 'weight', weightData),
        bias: ctx.tensor([outFeatures], 'bias', biasData),
        dy: ctx.tensor([...batchShape, outFeatures], 'dy', dyData),
      };
    }

    // Float64 results, and the sums of |terms| behind each output that set its tolerance.
    const linearReference = (
      x: Float32Array | Float64Array,
      weight: Float32Array | Float64Array,
      bias: Float32Array | Float64Array,
      dy: Float32Array | Float64Array,
    ) => ({
      y: reference.linearForward(x, weight, bias, outFeatures, inFeatures),
      dx: reference.linearBackwardInput(dy, weight, outFeatures, inFeatures),
      dWeight: reference.linearBackwardWeight(dy, x, outFeatures, inFeatures),
      dBias: reference.columnSums(dy, outFeatures),
    });
    const expected = linearReference(xData, weightData, biasData, dyData);
    const termSums = linearReference(abs(xData), abs(weightData), abs(biasData), abs(dyData));
    // Length of the sum behind each output: in, out, rows and rows.
    const sumLength = { y: inFeatures, dx: outFeatures, dWeight: rows, dBias: rows };
    const tolerance = {
      y: accumulationTolerance(sumLength.y, termSums.y),
      dx: accumulationTolerance(sumLength.dx, termSums.dx),
      dWeight: accumulationTolerance(sumLength.dWeight, termSums.dWeight),
      dBias: accumulationTolerance(sumLength.dBias, termSums.dBias),
    };

    // L(x, W, b) = sum(linear(x, W, b) * dy): the backward passes are its gradients.
    const loss = (x: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number>) =>
      dot(reference.linearForward(x, weight, bias, outFeatures, inFeatures), dyData);

    it('forward, backward and their gradients against central differences', async () => {
      const { x, weight, bias, dy } = upload();
      const y = ctx.tensor([rows, outFeatures], 'y');
      const dx = ctx.tensor([rows, inFeatures], 'dx');
      const dWeight = ctx.tensor([outFeatures, inFeatures], 'dWeight');
      const dBias = ctx.tensor([outFeatures], 'dBias');
      kernels.linearForward(ctx, x, weight, bias, y);
      kernels.linearBackwardInput(ctx, dy, weight, dx);
      kernels.linearBackwardWeight(ctx, dy, x, dWeight, dBias);
      const [yGpu, dxGpu, dWeightGpu, dBiasGpu] = await ctx.readMany([y, dx, dWeight, dBias]);
      expectClose(yGpu, expected.y, { ...tolerance.y, label: 'y' });
      expectClose(dxGpu, expected.dx, { ...tolerance.dx, label: 'dx' });
      expectClose(dWeightGpu, expected.dWeight, { ...tolerance.dWeight, label: 'dWeight' });
      expectClose(dBiasGpu, expected.dBias, { ...tolerance.dBias, label: 'dBias' });

      // Independent of the reference backward: central differences of the float64 forward. L is
      // linear in each argument, so the differences are exact up to float64 rounding of L / epsilon
      // (~1e-10 here); the GPU's f32 rounding dominates and the same tolerances apply.
      const differenceError = 1e-8;
      const numeric = {
        dx: centralDifferenceGradient((v) => loss(v, weightData, biasData), xData),
        dWeight: centralDifferenceGradient((v) => loss(xData, v, biasData), weightData),
        dBias: centralDifferenceGradient((v) => loss(xData, weightData, v), biasData),
      };
      for (const [label, actual] of [
        ['dx', dxGpu],
        ['dWeight', dWeightGpu],
        ['dBias', dBiasGpu],
      ] as const) {
        const atol = tolerance[label].atol + differenceError;
        expectClose(actual, numeric[label], { rtol: 0, atol, label: `${label} vs finite differences` });
      }
      [x, weight, bias, dy, y, dx, dWeight, dBias].forEach((t) => t.destroy());
    });

    it('accumulates into y, dx, dWeight and dBias', async () => {
      const { x, weight, bias, dy } = upload();
      const before = {
        y: randomArray(rows * outFeatures, 21),
        dx: randomArray(rows * inFeatures, 22),
        dWeight: randomArray(outFeatures * inFeatures, 23),
        dBias: randomArray(outFeatures, 24),
      };
      const y = ctx.tensor([rows, outFeatures], 'y', before.y);
      const dx = ctx.tensor([rows, inFeatures], 'dx', before.dx);
      const dWeight = ctx.tensor([outFeatures, inFeatures], 'dWeight', before.dWeight);
      const dBias = ctx.tensor([outFeatures], 'dBias', before.dBias);
      const accumulate = { accumulate: true };
      kernels.linearForward(ctx, x, weight, bias, y, accumulate);
      kernels.linearBackwardInput(ctx, dy, weight, dx, accumulate);
      kernels.linearBackwardWeight(ctx, dy, x, dWeight, dBias, accumulate);
      const results = await ctx.readMany([y, dx, dWeight, dBias]);
      // The old value is one more term of each sum.
      (['y', 'dx', 'dWeight', 'dBias'] as const).forEach((label, i) => {
        const withOld = expected[label].map((v, j) => v + before[label][j]);
        const withOldTerms = termSums[label].map((v, j) => v + Math.abs(before[label][j]));
        expectClose(results[i], withOld, {
          ...accumulationTolerance(sumLength[label], withOldTerms),
          label: `accumulated ${label}`,
        });
      });
      [x, weight, bias, dy, y, dx, dWeight, dBias].forEach((t) => t.destroy());
    });
  });
}

describe('nn.Linear shape checks', () => {
  it('names the tensor whose shape is wrong', () => {
    const x = ctx.tensor([6, 5], 'x');
    const weight = ctx.tensor([7, 5], 'weight');
    const dy = ctx.tensor([6, 7], 'dy');
    const wrongY = ctx.tensor([6, 8], 'y');
    const wrongX = ctx.tensor([6, 6], 'x wide');
    const flatWeight = ctx.tensor([35], 'flat weight');
    expect(() => kernels.linearForward(ctx, x, weight, null, wrongY)).toThrow(/y "y" has shape \[6, 8\]/);
    expect(() => kernels.linearForward(ctx, wrongX, weight, null, wrongY)).toThrow(/x "x wide" has shape/);
    expect(() => kernels.linearForward(ctx, x, flatWeight, null, wrongY)).toThrow(
      /weight "flat weight" has shape \[35\], expected \[out, in\]/,
    );
    expect(() => kernels.linearBackwardInput(ctx, dy, weight, wrongX)).toThrow(/dx "x wide"/);
    expect(() => kernels.linearBackwardWeight(ctx, dy, x, weight, wrongY)).toThrow(/dBias "y"/);
    [x, weight, dy, wrongY, wrongX, flatWeight].forEach((t) => t.destroy());
  });
});

// The 'f16' precision's products, on a device with shader-f16 (Mesa's lavapipe where there is no GPU).
describe.skipIf(typeof f16 === 'string')(
  `matmul in f16 arithmetic${typeof f16 === 'string' ? ` (skipped: ${f16})` : ''}`,
  () => {
    const f16Ctx = f16 as GpuContext;
    const arithmetic = 'f16';
    for (const transposeB of [false, true]) {
      const layout = transposeB ? 'bT (linearForward)' : 'b (linearBackwardInput)';
      it(`${layout}: awkward and aligned shapes, f32 and half-precision b, both kernels`, async () => {
        await runCases(f16Ctx, shapeCases(SHAPES, { transposeB, arithmetic }));
        await runCases(f16Ctx, shapeCases(SHAPES, { transposeB, arithmetic, halfB: true, bias: true }));
        // The shared kernel's tiles hold halves: staged from f32 and from half-precision b.
        const shapes = [...SHARED_SCALAR_SHAPES, ...SHARED_VEC4_SHAPES];
        await runCases(f16Ctx, shapeCases(shapes, { transposeB, arithmetic, bias: true }), smallSharedConfig);
        await runCases(f16Ctx, shapeCases(SHARED_VEC4_SHAPES, { transposeB, arithmetic, halfB: true }), realGpuConfig);
      });
    }

    it('transposed a, batches, broadcast b, alpha and accumulate', async () => {
      await runCases(f16Ctx, [
        ['aT', { m: 17, n: 33, k: 68, transposeA: true, arithmetic }],
        ['batch 3', { m: 5, n: 6, k: 7, batch: 3, transposeA: true, arithmetic }],
        [
          'everything at once',
          { m: 19, n: 10, k: 14, batch: 2, alpha: 0.5, bias: true, accumulate: true, broadcastB: true, arithmetic },
        ],
      ]);
    });

    it('rounds: the same product differs from the f32 variant', async () => {
      const [m, n, k] = [8, 8, 256];
      const [a, b] = [m * k, k * n].map((size, i) => f16Ctx.tensor([size], `operand ${i}`, randomArray(size, 7 + i)));
      const [inF32, inF16] = ['f32', 'f16'].map((label) => f16Ctx.tensor([m * n], label));
      kernels.matmul(f16Ctx, a, b, inF32, { m, n, k });
      kernels.matmul(f16Ctx, a, b, inF16, { m, n, k, arithmetic });
      const [single, half] = await f16Ctx.readMany([inF32, inF16]);
      expect(half.some((value, i) => value !== single[i])).toBe(true);
      [a, b, inF32, inF16].forEach((t) => t.destroy());
    });
  },
);
