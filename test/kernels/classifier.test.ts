import { describe, expect, it } from 'vitest';
import { GpuContext } from '../../src/gpu/context';
import * as classifier from '../../src/kernels/classifier';
import { expectClose } from '../helpers/compare';
import { centralDifferenceGradient, dot } from '../helpers/finite-difference';
import { useGpu } from '../helpers/gpu';
import { mulberry32, randomArray } from '../helpers/random';
import * as reference from '../reference/classifier';

// CLIP's logit scale, exp(4.6052): large enough that a softmax without the row maximum overflows f32.
const LOGIT_SCALE = 100;

const ctx = await useGpu();
// The same device under a GPU's name: the row reductions take the 256 threads GPUs get (tuning.ts).
const asRealGpu = new GpuContext(ctx.device, { adapterName: 'nvidia / any real GPU' });

function largestMagnitude(values: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < values.length; i++) largest = Math.max(largest, Math.abs(values[i]));
  return largest;
}

function randomLabels(count: number, classes: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: count }, () => Math.floor(next() * classes));
}

describe('L2 normalisation', () => {
  // Unit-norm outputs and their gradients (~1/norm ~ 1) carry a few f32 ulps from the sum of
  // squares and the division: 1e-6 relative plus 1e-6 absolute is ~10x that.
  const TOLERANCE = { rtol: 1e-6, atol: 1e-6 };
  const shapes: [number, number][] = [
    [1, 512],
    [3, 1],
    [2, 3],
    [4, 33],
    [2, 768],
    [3, 1000],
  ];
  async function checkL2(
    context: GpuContext,
    rows: number,
    width: number,
    withFiniteDifferences: boolean,
  ): Promise<void> {
    const xData = randomArray(rows * width, rows * 100 + width);
    const doutData = randomArray(rows * width, rows * 100 + width + 1);
    const x = context.tensor([rows, width], 'x', xData);
    const dout = context.tensor([rows, width], 'dout', doutData);
    const out = context.tensor([rows, width], 'out');
    const norms = context.tensor([rows], 'norms');
    const dx = context.tensor([rows, width], 'dx');
    classifier.l2NormalizeForward(context, x, out, norms);
    classifier.l2NormalizeBackward(context, dout, out, norms, dx);
    const [outGpu, normsGpu, dxGpu] = await context.readMany([out, norms, dx]);
    const expected = reference.l2Normalize(xData, width);
    expectClose(outGpu, expected.out, { ...TOLERANCE, label: 'normalized' });
    expectClose(normsGpu, expected.norms, { ...TOLERANCE, label: 'norms' });
    expectClose(dxGpu, reference.l2NormalizeBackward(doutData, xData, width), { ...TOLERANCE, label: 'dx' });
    if (withFiniteDifferences) {
      const numeric = centralDifferenceGradient((v) => dot(reference.l2Normalize(v, width).out, doutData), xData);
      expectClose(dxGpu, numeric, { ...TOLERANCE, label: 'dx vs finite differences' });
    }
    [x, dout, out, norms, dx].forEach((t) => t.destroy());
  }

  for (const [rows, width] of shapes) {
    it(`forward and backward, ${rows} x ${width}`, () => checkL2(ctx, rows, width, true));
  }

  it('with the 256 threads per row real GPUs get', async () => {
    for (const [rows, width] of [
      [3, 1],
      [4, 33],
      [3, 1000],
    ])
      await checkL2(asRealGpu, rows, width, false);
  });

  it('maps a zero row to zero and accumulates its gradient', async () => {
    const width = 5;
    const xData = new Float32Array([0, 0, 0, 0, 0, 3, 4, 0, 0, 0]);
    const doutData = randomArray(2 * width, 1);
    const initialDx = randomArray(2 * width, 2);
    const x = ctx.tensor([2, width], 'x', xData);
    const dout = ctx.tensor([2, width], 'dout', doutData);
    const out = ctx.tensor([2, width], 'out');
    const norms = ctx.tensor([2], 'norms');
    const dx = ctx.tensor([2, width], 'dx', initialDx);
    classifier.l2NormalizeForward(ctx, x, out, norms);
    classifier.l2NormalizeBackward(ctx, dout, out, norms, dx, { accumulate: true });
    const [outGpu, dxGpu] = await ctx.readMany([out, dx]);
    expectClose(outGpu, [0, 0, 0, 0, 0, 0.6, 0.8, 0, 0, 0], { ...TOLERANCE, label: 'normalized' });
    // The zero row is outside the formula's domain (and the finite-difference check's): only the second row.
    const expectedDx = reference.l2NormalizeBackward(doutData, xData, width).map((v, i) => v + initialDx[i]);
    expectClose(dxGpu.slice(width), expectedDx.slice(width), { ...TOLERANCE, label: 'accumulated dx' });
    expect(dxGpu.every(Number.isFinite)).toBe(true);
  });
});

describe('cosine logits', () => {
  // Each output is an f32 sum of D, C or B products, whose rounding scales with the partial sums,
  // i.e. with the largest outputs rather than each element: error up to 1e-5 of the largest |value|
  // (worst seen: 1.1e-6 of it, dImage with C = 1000, a sum of 1000 terms).
  const closeTo = (expected: Float64Array, label: string) => ({
    rtol: 1e-5,
    atol: 1e-5 * largestMagnitude(expected),
    label,
  });

  function unitRows(rows: number, width: number, seed: number): Float32Array {
    return Float32Array.from(reference.l2Normalize(randomArray(rows * width, seed), width).out);
  }

  async function checkCosineLogits(batch: number, classes: number, width: number, againstFiniteDifferences: boolean) {
    const seed = batch * 10_000 + classes * 10 + width;
    const imageData = unitRows(batch, width, seed);
    const textData = unitRows(classes, width, seed + 1);
    const dLogitsData = randomArray(batch * classes, seed + 2);
    const image = ctx.tensor([batch, width], 'image', imageData);
    const text = ctx.tensor([classes, width], 'text', textData);
    const logits = ctx.tensor([batch, classes], 'logits');
    const dLogits = ctx.tensor([batch, classes], 'dLogits', dLogitsData);
    const dImage = ctx.tensor([batch, width], 'dImage');
    const dText = ctx.tensor([classes, width], 'dText');
    classifier.cosineLogitsForward(ctx, image, text, logits, LOGIT_SCALE);
    classifier.cosineLogitsBackward(ctx, dLogits, image, text, dImage, dText, LOGIT_SCALE);
    const [logitsGpu, dImageGpu, dTextGpu] = await ctx.readMany([logits, dImage, dText]);
    const expectedLogits = reference.cosineLogits(imageData, textData, width, LOGIT_SCALE);
    expectClose(logitsGpu, expectedLogits, closeTo(expectedLogits, 'logits'));
    const gradients = reference.cosineLogitsBackward(dLogitsData, imageData, textData, width, LOGIT_SCALE);
    expectClose(dImageGpu, gradients.dImage, closeTo(gradients.dImage, 'dImage'));
    expectClose(dTextGpu, gradients.dText, closeTo(gradients.dText, 'dText'));
    if (againstFiniteDifferences) {
      const loss = (img: ArrayLike<number>, txt: ArrayLike<number>) =>
        dot(reference.cosineLogits(img, txt, width, LOGIT_SCALE), dLogitsData);
      const numericDImage = centralDifferenceGradient((v) => loss(v, textData), imageData);
      const numericDText = centralDifferenceGradient((v) => loss(imageData, v), textData);
      expectClose(dImageGpu, numericDImage, closeTo(numericDImage, 'dImage vs finite differences'));
      expectClose(dTextGpu, numericDText, closeTo(numericDText, 'dText vs finite differences'));
    }
    [image, text, logits, dLogits, dImage, dText].forEach((t) => t.destroy());
  }

  // Below, at and past the 16-wide tile in every dimension, with finite differences where they are cheap.
  for (const [batch, classes, width] of [
    [1, 1, 1],
    [1, 3, 33],
    [5, 17, 16],
    [3, 33, 40],
  ]) {
    it(`forward and both backward sides, B ${batch} C ${classes} D ${width}, against finite differences`, async () => {
      await checkCosineLogits(batch, classes, width, true);
    });
  }

  // CLIP's feature width (the logits' sum), and ImageNet's 1000 classes (the image gradient's sum),
  // in two cases: 1000 x 512 text gradients take SwiftShader ~4 s.
  for (const [batch, classes, width] of [
    [9, 200, 512],
    [9, 1000, 48],
  ]) {
    it(`forward and both backward sides, B ${batch} C ${classes} D ${width}`, async () => {
      await checkCosineLogits(batch, classes, width, false);
    });
  }

  it('accumulates, and skips a null side', async () => {
    const [batch, classes, width] = [2, 3, 20];
    const imageData = unitRows(batch, width, 1);
    const textData = unitRows(classes, width, 2);
    const dLogitsData = randomArray(batch * classes, 3);
    const initialDImage = randomArray(batch * width, 4);
    const untouchedDText = randomArray(classes * width, 5);
    const image = ctx.tensor([batch, width], 'image', imageData);
    const text = ctx.tensor([classes, width], 'text', textData);
    const dLogits = ctx.tensor([batch, classes], 'dLogits', dLogitsData);
    const dImage = ctx.tensor([batch, width], 'dImage', initialDImage);
    const dText = ctx.tensor([classes, width], 'dText', untouchedDText);
    classifier.cosineLogitsBackward(ctx, dLogits, image, text, dImage, null, LOGIT_SCALE, { accumulate: true });
    const [dImageGpu, dTextGpu] = await ctx.readMany([dImage, dText]);
    const { dImage: expected } = reference.cosineLogitsBackward(dLogitsData, imageData, textData, width, LOGIT_SCALE);
    const accumulated = expected.map((v, i) => v + initialDImage[i]);
    expectClose(dImageGpu, accumulated, closeTo(accumulated, 'accumulated dImage'));
    expect(dTextGpu).toEqual(untouchedDText);
  });

  it('rejects mismatched shapes', () => {
    const image = ctx.tensor([2, 8], 'image');
    const text = ctx.tensor([3, 7], 'text');
    const logits = ctx.tensor([2, 3], 'logits');
    expect(() => classifier.cosineLogitsForward(ctx, image, text, logits, 1)).toThrow(
      /text has shape \[3, 7\], expected \[3, 8\]/,
    );
  });
});

describe('softmax cross-entropy', () => {
  // Logits reach +-100: f32 rounds logit - max to ~ulp(100) = 8e-6 absolute, which is the loss's
  // error and a relative error of the same size in each probability. Gradients are probabilities
  // times lossScale. 1e-5 relative plus 2e-5 absolute covers it with ~2-10x headroom.
  const TOLERANCE = { rtol: 1e-5, atol: 2e-5 };
  const ACCUMULATION_FACTOR = 0.5;

  // C = 1 (loss 0), small odd sizes, one row, and CLIP's 1000 ImageNet classes at batch 32.
  const shapes: [number, number][] = [
    [3, 1],
    [4, 3],
    [1, 33],
    [2, 300],
    [32, 1000],
  ];
  async function checkSoftmax(
    context: GpuContext,
    rows: number,
    classes: number,
    withFiniteDifferences: boolean,
  ): Promise<void> {
    const seed = rows * 10_000 + classes;
    const logitsData = randomArray(rows * classes, seed, LOGIT_SCALE);
    const labelsData = randomLabels(rows, classes, seed + 1);
    const lossScale = ACCUMULATION_FACTOR / rows;
    const logits = context.tensor([rows, classes], 'logits', logitsData);
    const labels = context.tensor([rows], 'labels', labelsData);
    const losses = context.tensor([rows], 'losses');
    const probs = context.tensor([rows, classes], 'probs');
    const dLogits = context.tensor([rows, classes], 'dLogits');
    classifier.softmaxCrossEntropyForward(context, logits, labels, losses, probs);
    classifier.softmaxCrossEntropyBackward(context, probs, labels, dLogits, lossScale);
    const [lossesGpu, probsGpu, dLogitsGpu] = await context.readMany([losses, probs, dLogits]);
    const expected = reference.softmaxCrossEntropy(logitsData, labelsData, classes);
    expectClose(lossesGpu, expected.losses, { ...TOLERANCE, label: 'losses' });
    expectClose(probsGpu, expected.probs, { ...TOLERANCE, label: 'probs' });
    expectClose(dLogitsGpu, reference.softmaxCrossEntropyBackward(expected.probs, labelsData, classes, lossScale), {
      ...TOLERANCE,
      label: 'dLogits',
    });
    // Finite differences cost rows * classes forwards of the whole batch: only where that is cheap.
    if (withFiniteDifferences && rows * classes <= 1000) {
      const meanLoss = (v: ArrayLike<number>) =>
        lossScale * reference.softmaxCrossEntropy(v, labelsData, classes).losses.reduce((a, b) => a + b, 0);
      // The logits are ~100, so the float64 step sits well above rounding at 1e-4.
      const numeric = centralDifferenceGradient(meanLoss, logitsData, 1e-4);
      expectClose(dLogitsGpu, numeric, { ...TOLERANCE, label: 'dLogits vs finite differences' });
    }
    [logits, labels, losses, probs, dLogits].forEach((t) => t.destroy());
  }

  for (const [rows, classes] of shapes) {
    it(`forward and backward, ${rows} x ${classes}`, () => checkSoftmax(ctx, rows, classes, true));
  }

  it('with the 256 threads per row real GPUs get', async () => {
    for (const [rows, classes] of [
      [3, 1],
      [1, 33],
      [32, 1000],
    ])
      await checkSoftmax(asRealGpu, rows, classes, false);
  });
});
