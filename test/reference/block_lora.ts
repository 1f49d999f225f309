// Plain float64 references for shaders/block_lora.wgsl: Block-LoRA, plain LoRA (to check that the
// two agree), and the dropout mask, which must be the shader's hash bit for bit.

import type { LoraDropout } from '../../src/kernels/dropout';

/** lowbias32 (C. Wellons), as mix32 in the shader: u32 in, u32 out. */
export function mix32(value: number): number {
  let h = value >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The dropout factor of each of the first `count` elements of x (row-major flat index i): element i is
 * kept when mix32(mix32(i) ^ seed) >= floor(p * 2^32), and then scaled by 1 / (1 - p); else it is 0.
 */
export function dropoutFactors(count: number, { p, seed }: LoraDropout): Float64Array {
  const factors = new Float64Array(count).fill(1);
  if (p === 0) return factors;
  const threshold = Math.floor(p * 2 ** 32);
  for (let i = 0; i < count; i++) factors[i] = mix32(mix32(i) ^ seed) >= threshold ? 1 / (1 - p) : 0;
  return factors;
}

/** A matrix in a flat array: element (i, k) is data[i * rowStride + k * columnStride]. */
interface Matrix {
  data: ArrayLike<number>;
  rowStride: number;
  columnStride: number;
}

/** The row-major matrix [?, columns] stored in data. */
function rowMajor(data: ArrayLike<number>, columns: number): Matrix {
  return { data, rowStride: columns, columnStride: 1 };
}

/** The transpose of the row-major matrix [?, columns] stored in data. */
function transposed(data: ArrayLike<number>, columns: number): Matrix {
  return { data, rowStride: 1, columnStride: columns };
}

/** out [rows, cols] = left [rows, inner] right [inner, cols], each sum in order of k. */
function matmul(rows: number, inner: number, cols: number, left: Matrix, right: Matrix): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let sum = 0;
      for (let k = 0; k < inner; k++) {
        sum +=
          left.data[i * left.rowStride + k * left.columnStride] *
          right.data[k * right.rowStride + j * right.columnStride];
      }
      out[i * cols + j] = sum;
    }
  }
  return out;
}

function scaled(values: Float64Array, factor: number): Float64Array {
  for (let i = 0; i < values.length; i++) values[i] *= factor;
  return values;
}

/** values * factors, element-wise (dropout). */
function masked(values: ArrayLike<number>, factors: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = values[i] * factors[i];
  return out;
}

export interface BlockLoraShape {
  rows: number;
  dIn: number;
  dOut: number;
  /** b = r / n */
  blockRank: number;
  /** n */
  blocks: number;
}

export interface BlockLoraInputs {
  shape: BlockLoraShape;
  /** [rows, d_in] */
  x: ArrayLike<number>;
  /** A_s [b, d_in] */
  a: ArrayLike<number>;
  /** B_1 .. B_n stacked [n, d_out, b] */
  blocks: ArrayLike<number>;
  scale: number;
  /** dropoutFactors(rows * d_in, dropout): the mask is fixed for a seed. */
  dropFactors: ArrayLike<number>;
}

export function sumBlocks({ dOut, blockRank, blocks }: BlockLoraShape, stacked: ArrayLike<number>): Float64Array {
  const size = dOut * blockRank;
  const sum = new Float64Array(size);
  for (let block = 0; block < blocks; block++) {
    for (let i = 0; i < size; i++) sum[i] += stacked[block * size + i];
  }
  return sum;
}

/** delta = s * (sum_i B_i) (A_s drop(x)): what the adapter adds to the frozen layer's output [rows, d_out]. */
export function blockLoraForward(inputs: BlockLoraInputs): {
  xDropped: Float64Array;
  u: Float64Array;
  bSum: Float64Array;
  delta: Float64Array;
} {
  const { shape, x, a, scale, dropFactors } = inputs;
  const { rows, dIn, dOut, blockRank: b } = shape;
  const xDropped = masked(x, dropFactors);
  const u = matmul(rows, dIn, b, rowMajor(xDropped, dIn), transposed(a, dIn));
  const bSum = sumBlocks(shape, inputs.blocks);
  const delta = scaled(matmul(rows, b, dOut, rowMajor(u, b), transposed(bSum, b)), scale);
  return { xDropped, u, bSum, delta };
}

/** Gradients of sum(delta * g) for upstream gradient g [rows, d_out]; dBlocks is [n, d_out, b], every block alike. */
export function blockLoraBackward(
  inputs: BlockLoraInputs,
  g: ArrayLike<number>,
): { du: Float64Array; dA: Float64Array; dBlocks: Float64Array; dx: Float64Array } {
  const { shape, a, scale, dropFactors } = inputs;
  const { rows, dIn, dOut, blockRank: b, blocks } = shape;
  const { xDropped, u, bSum } = blockLoraForward(inputs);
  const du = scaled(matmul(rows, dOut, b, rowMajor(g, dOut), rowMajor(bSum, b)), scale);
  const dBlock = scaled(matmul(dOut, rows, b, transposed(g, dOut), rowMajor(u, b)), scale);
  const dBlocks = new Float64Array(blocks * dBlock.length);
  for (let block = 0; block < blocks; block++) dBlocks.set(dBlock, block * dBlock.length);
  const dA = matmul(b, rows, dIn, transposed(du, b), rowMajor(xDropped, dIn));
  const dx = masked(matmul(rows, b, dIn, rowMajor(du, b), rowMajor(a, dIn)), dropFactors);
  return { du, dA, dBlocks, dx };
}

export interface LoraInputs {
  rows: number;
  dIn: number;
  dOut: number;
  rank: number;
  x: ArrayLike<number>;
  /** A [rank, d_in] */
  a: ArrayLike<number>;
  /** B [d_out, rank] */
  b: ArrayLike<number>;
  scale: number;
  dropFactors: ArrayLike<number>;
}

/** Plain LoRA (Hu et al. 2021): delta = s * B (A drop(x)), and the gradients of sum(delta * g). */
export function lora(
  { rows, dIn, dOut, rank, x, a, b, scale, dropFactors }: LoraInputs,
  g: ArrayLike<number>,
): { delta: Float64Array; dA: Float64Array; dB: Float64Array; dx: Float64Array } {
  const xDropped = masked(x, dropFactors);
  const down = matmul(rows, dIn, rank, rowMajor(xDropped, dIn), transposed(a, dIn));
  const delta = scaled(matmul(rows, rank, dOut, rowMajor(down, rank), transposed(b, rank)), scale);
  const dDown = scaled(matmul(rows, dOut, rank, rowMajor(g, dOut), rowMajor(b, rank)), scale);
  const dB = scaled(matmul(dOut, rows, rank, transposed(g, dOut), rowMajor(down, rank)), scale);
  const dA = matmul(rank, rows, dIn, transposed(dDown, rank), rowMajor(xDropped, dIn));
  const dx = masked(matmul(rows, rank, dIn, rowMajor(dDown, rank), rowMajor(a, dIn)), dropFactors);
  return { delta, dA, dB, dx };
}
