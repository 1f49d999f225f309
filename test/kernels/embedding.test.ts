import { describe, expect, it } from 'vitest';
import * as embedding from '../../src/kernels/embedding';
import { expectClose } from '../helpers/compare';
import { centralDifferenceGradient, dot } from '../helpers/finite-difference';
import { useGpu } from '../helpers/gpu';
import { mulberry32, randomArray } from '../helpers/random';
import * as reference from '../reference/embedding';
import { roundedToHalf } from '../reference/half';

// Patch extraction and row gathers copy f32 values: bit-exact.
const EXACT = { rtol: 0, atol: 0 };
// One f32 addition of two f32 inputs is correctly rounded, so within half an ulp (2^-24 relative) of the float64 sum.
const ONE_ADDITION = { rtol: 2 ** -24, atol: 0 };

const ctx = await useGpu();

function randomIndices(count: number, limit: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: count }, () => Math.floor(next() * limit));
}

describe('extractPatches', () => {
  // Hidden 5 is not a multiple of 4; the 12-px image has an odd 3x3 patch grid.
  for (const { batch, imageSize, patchSize } of [
    { batch: 1, imageSize: 32, patchSize: 8 },
    { batch: 3, imageSize: 32, patchSize: 8 },
    { batch: 3, imageSize: 12, patchSize: 4 },
  ]) {
    it(`batch ${batch}, ${imageSize}-px images, patch ${patchSize}: matches the reference and, through a linear layer, the convolution`, async () => {
      const hidden = 5;
      const patchCount = (imageSize / patchSize) ** 2;
      const patchValues = 3 * patchSize * patchSize;
      const pixelData = randomArray(batch * 3 * imageSize * imageSize, 1);
      const pixels = ctx.tensor([batch, 3, imageSize, imageSize], 'pixels', pixelData);
      const patches = ctx.tensor([batch * patchCount, patchValues], 'patches');
      embedding.extractPatches(ctx, pixels, patches, { batch, imageSize, patchSize });
      const patchesGpu = await ctx.read(patches);
      expectClose(patchesGpu, reference.extractPatches(pixelData, batch, imageSize, patchSize), {
        ...EXACT,
        label: 'patches',
      });

      // The layout contract: patches times the flattened conv weight [D, 3*P*P] is the convolution. Both sides are
      // float64 sums of the same products in different orders, so 1e-12 covers reassociation.
      const weight = randomArray(hidden * patchValues, 2);
      const viaPatches = new Float64Array(batch * patchCount * hidden);
      for (let row = 0; row < batch * patchCount; row++)
        for (let d = 0; d < hidden; d++) {
          let sum = 0;
          for (let k = 0; k < patchValues; k++) sum += patchesGpu[row * patchValues + k] * weight[d * patchValues + k];
          viaPatches[row * hidden + d] = sum;
        }
      const convolution = reference.patchConvolution(pixelData, weight, batch, imageSize, patchSize, hidden);
      expectClose(viaPatches, convolution, { rtol: 1e-12, atol: 1e-12, label: 'patches x weight vs conv' });
      [pixels, patches].forEach((t) => t.destroy());
    });
  }

  it('rejects an image size that is not a multiple of the patch size, and a wrong patches shape', () => {
    const pixels = ctx.tensor([1, 3, 12, 12], 'pixels');
    const patches = ctx.tensor([9, 40], 'patches');
    expect(() => embedding.extractPatches(ctx, pixels, patches, { batch: 1, imageSize: 12, patchSize: 5 })).toThrow(
      /imageSize 12 is not a multiple of patchSize 5/,
    );
    expect(() => embedding.extractPatches(ctx, pixels, patches, { batch: 1, imageSize: 12, patchSize: 4 })).toThrow(
      /extractPatches: patches has shape \[9, 40\] \(360 elements\), expected \[9, 48\] \(432 elements\)/,
    );
    [pixels, patches].forEach((t) => t.destroy());
  });
});

describe('visionEmbeddingsForward', () => {
  for (const { batch, patches } of [
    { batch: 1, patches: 4 },
    { batch: 3, patches: 9 },
  ]) {
    it(`batch ${batch}, ${patches} patches, hidden 13`, async () => {
      const hidden = 13;
      const tokens = 1 + patches;
      const featureData = randomArray(batch * patches * hidden, 3);
      const classData = randomArray(hidden, 4);
      const positionData = randomArray(tokens * hidden, 5);
      const features = ctx.tensor([batch * patches, hidden], 'patch features', featureData);
      const classEmbedding = ctx.tensor([hidden], 'class embedding', classData);
      const positionEmbedding = ctx.tensor([tokens, hidden], 'position embedding', positionData);
      const out = ctx.tensor([batch, tokens, hidden], 'embeddings');
      embedding.visionEmbeddingsForward(ctx, features, classEmbedding, positionEmbedding, out, {
        batch,
        patches,
        hidden,
      });
      const expected = reference.visionEmbeddings(featureData, classData, positionData, batch, patches, hidden);
      expectClose(await ctx.read(out), expected, { ...ONE_ADDITION, label: 'vision embeddings' });
      [features, classEmbedding, positionEmbedding, out].forEach((t) => t.destroy());
    });
  }

  it('rejects a position table of the wrong length', () => {
    const features = ctx.tensor([4, 3], 'features');
    const classEmbedding = ctx.tensor([3], 'class');
    const positionEmbedding = ctx.tensor([4, 3], 'positions');
    const out = ctx.tensor([1, 5, 3], 'out');
    expect(() =>
      embedding.visionEmbeddingsForward(ctx, features, classEmbedding, positionEmbedding, out, {
        batch: 1,
        patches: 4,
        hidden: 3,
      }),
    ).toThrow(
      /visionEmbeddingsForward: positions has shape \[4, 3\] \(12 elements\), expected \[5, 3\] \(15 elements\)/,
    );
    [features, classEmbedding, positionEmbedding, out].forEach((t) => t.destroy());
  });
});

describe('textEmbeddingsForward', () => {
  const vocab = 50;
  const hidden = 13;
  // The position table is longer than the sequence, as CLIP's 77 positions are for a shortened batch.
  const maxPositions = 9;

  // A token table in half precision gives the float64 result of the table rounded to half (an odd
  // width puts rows across u32 words).
  for (const [batch, table] of [
    [1, 'f32'],
    [3, 'f32'],
    [3, 'f16'],
  ] as const) {
    it(`batch ${batch}, sequence 7, vocabulary ${vocab}, hidden ${hidden}, ${table} token table`, async () => {
      const seqLen = 7;
      const idData = randomIndices(batch * seqLen, vocab, 6);
      idData[0] = 0;
      idData[idData.length - 1] = vocab - 1;
      const tokenGiven = randomArray(vocab * hidden, 7);
      const tokenData = table === 'f16' ? roundedToHalf(tokenGiven) : tokenGiven;
      const positionData = randomArray(maxPositions * hidden, 8);
      const ids = ctx.tensor([batch, seqLen], 'ids', idData);
      const tokenEmbedding = ctx.tensor([vocab, hidden], 'token embedding', tokenGiven, table);
      const positionEmbedding = ctx.tensor([maxPositions, hidden], 'position embedding', positionData);
      const out = ctx.tensor([batch, seqLen, hidden], 'embeddings');
      embedding.textEmbeddingsForward(ctx, ids, tokenEmbedding, positionEmbedding, out, { batch, seqLen, hidden });
      const expected = reference.textEmbeddings(idData, tokenData, positionData, batch, seqLen, hidden);
      expectClose(await ctx.read(out), expected, { ...ONE_ADDITION, label: 'text embeddings' });
      [ids, tokenEmbedding, positionEmbedding, out].forEach((t) => t.destroy());
    });
  }

  it('makes the row of an out-of-range id NaN and leaves the others correct', async () => {
    const seqLen = 4;
    const idData = Float32Array.from([3, vocab, -1, 5]);
    const tokenData = randomArray(vocab * hidden, 9);
    const positionData = randomArray(maxPositions * hidden, 10);
    const ids = ctx.tensor([1, seqLen], 'ids', idData);
    const tokenEmbedding = ctx.tensor([vocab, hidden], 'token embedding', tokenData);
    const positionEmbedding = ctx.tensor([maxPositions, hidden], 'position embedding', positionData);
    const out = ctx.tensor([1, seqLen, hidden], 'embeddings');
    embedding.textEmbeddingsForward(ctx, ids, tokenEmbedding, positionEmbedding, out, { batch: 1, seqLen, hidden });
    const outGpu = await ctx.read(out);
    expect(outGpu.subarray(hidden, 3 * hidden).every(Number.isNaN)).toBe(true);
    const validIds = Float32Array.from([3, 5]);
    const validRows = Float32Array.from([...outGpu.subarray(0, hidden), ...outGpu.subarray(3 * hidden)]);
    const positionsOfValid = Float32Array.from([
      ...positionData.subarray(0, hidden),
      ...positionData.subarray(3 * hidden, 4 * hidden),
    ]);
    const expected = reference.textEmbeddings(validIds, tokenData, positionsOfValid, 1, 2, hidden);
    expectClose(validRows, expected, { ...ONE_ADDITION, label: 'rows with valid ids' });
    [ids, tokenEmbedding, positionEmbedding, out].forEach((t) => t.destroy());
  });

  it('rejects a sequence longer than the position table', () => {
    const ids = ctx.tensor([1, 10], 'ids');
    const tokenEmbedding = ctx.tensor([vocab, hidden], 'token embedding');
    const positionEmbedding = ctx.tensor([maxPositions, hidden], 'position embedding');
    const out = ctx.tensor([1, 10, hidden], 'out');
    expect(() =>
      embedding.textEmbeddingsForward(ctx, ids, tokenEmbedding, positionEmbedding, out, {
        batch: 1,
        seqLen: 10,
        hidden,
      }),
    ).toThrow(/position embedding has 9 positions, fewer than seqLen 10/);
    [ids, tokenEmbedding, positionEmbedding, out].forEach((t) => t.destroy());
  });
});

describe('gatherRows', () => {
  const seqLen = 5;
  const hidden = 7;

  for (const batch of [1, 3]) {
    it(`forward, and backward against finite differences and with accumulation, batch ${batch}`, async () => {
      // The first and last rows, and one in between.
      const rowData = Float32Array.from([seqLen - 1, 0, 2].slice(0, batch));
      const xData = randomArray(batch * seqLen * hidden, 11);
      const doutData = randomArray(batch * hidden, 12);
      const initialDx = randomArray(batch * seqLen * hidden, 13);
      const x = ctx.tensor([batch, seqLen, hidden], 'x', xData);
      const rows = ctx.tensor([batch], 'rows', rowData);
      const out = ctx.tensor([batch, hidden], 'pooled');
      const dout = ctx.tensor([batch, hidden], 'dout', doutData);
      const dx = ctx.tensor([batch, seqLen, hidden], 'dx');
      const accumulated = ctx.tensor([batch, seqLen, hidden], 'accumulated dx', initialDx);
      embedding.gatherRowsForward(ctx, x, rows, out, { batch, seqLen, hidden });
      ctx.zero(dx);
      embedding.gatherRowsBackward(ctx, dout, rows, dx, { batch, seqLen, hidden });
      embedding.gatherRowsBackward(ctx, dout, rows, accumulated, { batch, seqLen, hidden });
      const [outGpu, dxGpu, accumulatedGpu] = await ctx.readMany([out, dx, accumulated]);

      expectClose(outGpu, reference.gatherRows(xData, rowData, batch, seqLen, hidden), { ...EXACT, label: 'pooled' });
      // The forward is linear, so central differences are exact up to float64 rounding of the loss (~1e-10 here).
      const numeric = centralDifferenceGradient(
        (v) => dot(reference.gatherRows(v, rowData, batch, seqLen, hidden), doutData),
        xData,
      );
      expectClose(dxGpu, numeric, { rtol: 1e-6, atol: 1e-6, label: 'dx vs finite differences' });
      expectClose(
        accumulatedGpu,
        initialDx.map((v, i) => v + dxGpu[i]),
        { ...ONE_ADDITION, label: 'accumulated dx' },
      );
      [x, rows, out, dout, dx, accumulated].forEach((t) => t.destroy());
    });
  }

  it('makes the output of an out-of-range row NaN, and its backward writes nothing', async () => {
    const rowData = Float32Array.from([seqLen, 1]);
    const xData = randomArray(2 * seqLen * hidden, 14);
    const x = ctx.tensor([2, seqLen, hidden], 'x', xData);
    const rows = ctx.tensor([2], 'rows', rowData);
    const out = ctx.tensor([2, hidden], 'pooled');
    const dout = ctx.tensor([2, hidden], 'dout', randomArray(2 * hidden, 15));
    const dx = ctx.tensor([2, seqLen, hidden], 'dx');
    embedding.gatherRowsForward(ctx, x, rows, out, { batch: 2, seqLen, hidden });
    ctx.zero(dx);
    embedding.gatherRowsBackward(ctx, dout, rows, dx, { batch: 2, seqLen, hidden });
    const [outGpu, dxGpu] = await ctx.readMany([out, dx]);
    expect(outGpu.subarray(0, hidden).every(Number.isNaN)).toBe(true);
    expectClose(outGpu.subarray(hidden), xData.subarray((seqLen + 1) * hidden, (seqLen + 2) * hidden), {
      ...EXACT,
      label: 'valid row',
    });
    expect(dxGpu.subarray(0, seqLen * hidden).every((v) => v === 0)).toBe(true);
    [x, rows, out, dout, dx].forEach((t) => t.destroy());
  });
});
