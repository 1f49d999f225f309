// Matrix products and nn.Linear's forward and backward (shaders/matmul.wgsl).

import type { GpuContext } from '../gpu/context';
import { type Arithmetic, shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { checkDropout, dropoutParams, NO_DROPOUT, type LoraDropout } from './dropout';
import { grid1d } from './grid';
import { dimensionsOf, expectElements, expectPositiveIntegers, shapeError } from './shapes';
import { isCpuAdapterName } from './tuning';

const SHADER = 'matmul';
const BLOCK = 4; // every thread computes a 4x4 block of out
const COLUMN_SUMS_WORKGROUP = shaderInterface(SHADER).constant('COLUMN_SUMS_WORKGROUP');

export interface MatmulOptions {
  m: number;
  n: number;
  k: number; // out is [batch, m, n]
  batch?: number; // default 1; a, b, out are contiguous per batch
  transposeA?: boolean; // a stored [batch, k, m] instead of [batch, m, k]
  transposeB?: boolean; // b stored [batch, n, k] instead of [batch, k, n]
  alpha?: number; // out = alpha * op(a) op(b) (+ bias)
  accumulate?: boolean; // out += ... instead of out = ...
  bias?: Tensor | null; // [n], added to every row (not scaled by alpha)
  broadcastB?: boolean; // one b shared by every batch entry (weights)
  // b may hold f16 values (frozen weights in half precision); a, out and the rest are f32.
  /**
   * Where batch entry i of an operand starts, in elements (i * stride), for operands that are not one
   * contiguous [batch, ...] tensor; 0 shares one entry. By default a, b and out are contiguous and the
   * bias is shared. q, k and v of a layer: a (its input) shared, b, bias and out one entry each.
   */
  batchStrides?: BatchStrides;
  /**
   * out = sum_i op(a_i) op(b_i) over this many planes (default 1): entry e * kPlanes + i of a and b
   * (at batchStrides) is batch entry e's plane i, and so of the low-rank term. dx of q, k and v together.
   */
  kPlanes?: number;
  /** Added as the product is stored (batch 1 only): a Block-LoRA adapter's share of a linear layer. */
  lowRank?: LowRankTerm | null;
  /** Kernel and tile shape; by default matmulConfigOf(ctx, arithmetic). For benchmarks, the autotune and tests. */
  config?: MatmulConfig;
  /** The products' precision (shaders/matmul.wgsl): 'f16' needs shader-f16. Sums are f32 either way. Default 'f32'. */
  arithmetic?: Arithmetic;
}

export type BatchStrides = Partial<Record<'a' | 'b' | 'out' | 'bias', number>>;

/**
 * out[row, col] += scale * drop(sum_j thin[row, j] W(col, j)) for thin [m, rank], with W(col, j) at
 * col * weightWidthStride + j * weightRankStride of `weight`, and dropout by out's flat index (within
 * the batch entry). Made by block_lora.ts's loraUp and loraInputGradient. In a batched product, entry i
 * reads thin and W from i * thinBatchStride and i * weightBatchStride, and masks with planeSeed(seed, i).
 */
export interface LowRankTerm {
  thin: Tensor;
  weight: Tensor;
  rank: number;
  weightWidthStride: number;
  weightRankStride: number;
  scale: number;
  dropout: LoraDropout;
  thinBatchStride?: number;
  weightBatchStride?: number;
}

/** How the product is computed: which kernel, and its tile shape (WGSL override constants). */
export interface MatmulConfig {
  /** 'direct': each thread reads its operands from storage; 'shared': workgroups stage tiles in workgroup memory. */
  kernel: 'direct' | 'shared';
  /** Threads per workgroup along n and along m; a workgroup covers 4*workgroupY rows by 4*workgroupX columns. */
  workgroupX: number;
  workgroupY: number;
  /** 'shared' only: k-slice staged in workgroup memory per step, in blocks of 4. */
  kBlocks: number;
}

const direct = (workgroupX: number, workgroupY: number): MatmulConfig => ({
  kernel: 'direct',
  workgroupX,
  workgroupY,
  kBlocks: 0,
});
const shared = (workgroupX: number, workgroupY: number, kSlice: number): MatmulConfig => ({
  kernel: 'shared',
  workgroupX,
  workgroupY,
  kBlocks: kSlice / 4,
});

/** The candidates for matmulConfigFor: threads per workgroup (x along n, y along m) and, for 'shared', the k-slice. */
export const MATMUL_CONFIGS = {
  direct8x8: direct(8, 8),
  direct16x16: direct(16, 16),
  shared8x8k16: shared(8, 8, 16),
  shared8x8k32: shared(8, 8, 32),
  shared16x8k16: shared(16, 8, 16),
  shared16x16k16: shared(16, 16, 16),
} as const satisfies Record<string, MatmulConfig>;

// Measured in the linearForward layout, GFLOP/s at M x K x N.
//
// NVIDIA H100 (Dawn, Vulkan; `npm run bench:kernels -- --matmul-variants`, GPU timestamps, median of 5):
//                  50x768x768  197x768x3072  1600x768x2304  77x512x512  512x512x512  total ms, 5 shapes
//   direct8x8            608         1587           1831         607         1759     3.99
//   direct16x16          235         1187           1868         201         1332     4.47
//   shared8x8k16        1156        11003          17334        1128         7219     0.535
//   shared8x8k32        1503         9407          11715        1450         8525     0.681
//   shared16x8k16       1050        11207          19749        1034         6776     0.505  <- real GPUs
//   shared16x16k16       894        10031          21642         882         5777     0.513
// Also slower there: direct16x4, 8-wide k-slices (4.6-17.5 TFLOP/s), and 2x2 blocks of 4x4 per thread
// (64x64 to 128x128 tiles of out: 2.5-4.3 TFLOP/s at 1600x768x2304).
//
// SwiftShader, 2 cores shared with other jobs, so GFLOP per CPU-second of the process x 2 (about
// what an idle machine gives; wall-clock rates were 2-4 times lower and noisy):
//                  50x768x768  77x512x512  197x768x3072  512x512x512
//   direct8x8           1.56        1.74          1.81         1.70  <- SwiftShader
//   direct16x16         1.40        1.47          1.65         1.71
//   direct16x4          1.39        1.71          1.37         1.79
//   shared8x8k16        0.61        0.54          0.65         0.66  (shared 16x8 or 16x16, k16 or k32: 0.62-0.76 at 512^3)
// Barriers and workgroup memory cost more than they save on a CPU; a GPU's cache hierarchy wants them.
export function matmulConfigFor(adapterName: string): MatmulConfig {
  return isCpuAdapterName(adapterName) ? MATMUL_CONFIGS.direct8x8 : MATMUL_CONFIGS.shared16x8k16;
}

/** Per context and arithmetic, the configuration the autotune measured fastest on its adapter (matmul-tune.ts). */
const tunedConfigs = new WeakMap<GpuContext, Partial<Record<Arithmetic, MatmulConfig>>>();

export function useMatmulConfig(ctx: GpuContext, config: MatmulConfig, arithmetic: Arithmetic = 'f32'): void {
  tunedConfigs.set(ctx, { ...tunedConfigs.get(ctx), [arithmetic]: config });
}

/** What every matmul in this arithmetic on ctx runs: the tuned configuration, else the table's for its adapter. */
export function matmulConfigOf(ctx: GpuContext, arithmetic: Arithmetic = 'f32'): MatmulConfig {
  return tunedConfigs.get(ctx)?.[arithmetic] ?? matmulConfigFor(ctx.adapterName);
}

const NO_BATCH: Required<BatchStrides> = { a: 0, b: 0, out: 0, bias: 0 };

/** The Params struct of shaders/matmul.wgsl, field by field. */
function matmulParams(fields: {
  m: number;
  n: number;
  k: number;
  strides: Required<BatchStrides>;
  kPlanes: number;
  firstWorkgroup: readonly [number, number, number];
  alpha: number;
  accumulate: boolean;
  lowRank: LowRankTerm | null;
}) {
  const {
    m,
    n,
    k,
    strides,
    kPlanes,
    firstWorkgroup: [x, y, z],
    alpha,
    accumulate,
    lowRank,
  } = fields;
  return {
    m,
    n,
    k,
    aBatchStride: strides.a,
    bBatchStride: strides.b,
    outBatchStride: strides.out,
    biasBatchStride: strides.bias,
    kPlanes,
    firstWorkgroupX: x,
    firstWorkgroupY: y,
    firstWorkgroupZ: z,
    alpha,
    accumulate,
    lowRank: lowRank?.rank ?? 0,
    thinBatchStride: lowRank?.thinBatchStride ?? 0,
    thinWeightBatchStride: lowRank?.weightBatchStride ?? 0,
    thinWeightRankStride: lowRank?.weightRankStride ?? 0,
    thinWeightWidthStride: lowRank?.weightWidthStride ?? 0,
    lowRankScale: lowRank?.scale ?? 0,
    ...dropoutParams(lowRank?.dropout ?? NO_DROPOUT),
  };
}

function checkLowRank(term: LowRankTerm, m: number, n: number, batch: number): void {
  const {
    thin,
    weight,
    rank,
    weightWidthStride,
    weightRankStride,
    dropout,
    thinBatchStride = 0,
    weightBatchStride = 0,
  } = term;
  expectPositiveIntegers('matmul', { rank });
  if (batch === 1) expectElements('matmul', ['low-rank thin', thin], [m, rank], '[m, rank]');
  else expectReach(['low-rank thin', thin], batch, thinBatchStride, m * rank);
  const lastWeightIndex = (batch - 1) * weightBatchStride + (n - 1) * weightWidthStride + (rank - 1) * weightRankStride;
  if (lastWeightIndex >= weight.size) {
    throw new RangeError(
      `matmul: low-rank weight ${weight.label} has ${weight.size} values, its strides reach index ${lastWeightIndex}`,
    );
  }
  checkDropout('matmul', dropout);
}

/** A strided operand: its `batch` entries of `entry` elements, one every `stride`, lie inside it. */
function expectReach([role, tensor]: [string, Tensor], batch: number, stride: number, entry: number): void {
  const reach = (batch - 1) * stride + entry;
  if (!Number.isInteger(stride) || stride < 0 || tensor.size < reach) {
    throw new RangeError(
      `matmul: ${role} "${tensor.label}" has ${tensor.size} elements; ${batch} entries of ${entry}, one every ${stride}, need ${reach}`,
    );
  }
}

/** out[batch, m, n] (+)= alpha * op(a) op(b) (+ bias), with op(a) [m, k] and op(b) [k, n]. */
export function matmul(ctx: GpuContext, a: Tensor, b: Tensor, out: Tensor, options: MatmulOptions): void {
  const { m, n, k, batch = 1, transposeA = false, transposeB = false, alpha = 1, accumulate = false } = options;
  const { bias = null, broadcastB = false, lowRank = null, batchStrides = {}, kPlanes = 1, arithmetic } = options;
  expectPositiveIntegers('matmul', { m, n, k, batch, kPlanes });
  const bBatches = broadcastB ? 1 : batch;
  if (kPlanes > 1 && (batchStrides.a === undefined || batchStrides.b === undefined))
    throw new RangeError('matmul: k planes need the strides of a and b');
  const strides: Required<BatchStrides> = { a: m * k, b: broadcastB ? 0 : k * n, out: m * n, bias: 0, ...batchStrides };
  // By element count: a [batch * m, k] tensor serves as [batch, m, k]; a strided operand by its reach.
  const operand = (
    role: 'a' | 'b' | 'out',
    tensor: Tensor,
    entry: readonly number[],
    batches: number,
    note: string,
  ) => {
    if (batchStrides[role] === undefined) expectElements('matmul', [role, tensor], [batches, ...entry], note);
    else expectReach([role, tensor], role === 'out' ? batch : batch * kPlanes, strides[role], entry[0] * entry[1]);
  };
  operand('a', a, transposeA ? [k, m] : [m, k], batch, transposeA ? '[batch, k, m]' : '[batch, m, k]');
  operand('b', b, transposeB ? [n, k] : [k, n], bBatches, transposeB ? '[batch, n, k]' : '[batch, k, n]');
  operand('out', out, [m, n], batch, '[batch, m, n]');
  if (bias && batchStrides.bias === undefined) expectElements('matmul', ['bias', bias], [n], '[n]');
  else if (bias) expectReach(['bias', bias], batch, strides.bias, n);
  if (lowRank) checkLowRank(lowRank, m, n, batch * kPlanes);

  const config = options.config ?? matmulConfigOf(ctx, arithmetic);
  const constants: Record<string, number> = {
    TRANSPOSE_A: Number(transposeA),
    TRANSPOSE_B: Number(transposeB),
    // vec4 loads need the operand's contiguous dimension, and where its batch entries start, to be multiples of 4.
    VEC4_A: Number((transposeA ? m : k) % 4 === 0 && strides.a % 4 === 0),
    VEC4_B: Number((transposeB ? k : n) % 4 === 0 && strides.b % 4 === 0),
    F16_B: Number(b.type === 'f16'),
    WORKGROUP_X: config.workgroupX,
    WORKGROUP_Y: config.workgroupY,
  };
  if (config.kernel === 'shared') constants.K_BLOCKS = config.kBlocks;
  const entry = `matmul_${config.kernel}${bias ? '_bias' : ''}`;
  // Only b's views of its own precision are read; the others are bound to something (a) all the same.
  const bF32 = b.type === 'f32' ? b : a;
  const bindings: Record<string, Tensor> = {
    a,
    a4: a,
    b: bF32,
    b4: bF32,
    bHalf: b,
    bHalf4: b,
    out,
    thin: lowRank?.thin ?? a,
    thinWeight: lowRank?.weight ?? a,
  };
  if (bias) bindings.bias = bias;

  // Columns in x, rows in y, batch entries in z; a grid past the per-dimension limit runs in pieces.
  const groups = [Math.ceil(n / (BLOCK * config.workgroupX)), Math.ceil(m / (BLOCK * config.workgroupY)), batch];
  const limit = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  for (let z = 0; z < groups[2]; z += limit) {
    for (let y = 0; y < groups[1]; y += limit) {
      for (let x = 0; x < groups[0]; x += limit) {
        ctx.dispatch({
          shader: SHADER,
          entry,
          constants,
          arithmetic,
          params: matmulParams({ m, n, k, strides, kPlanes, firstWorkgroup: [x, y, z], alpha, accumulate, lowRank }),
          bindings,
          workgroups: [Math.min(limit, groups[0] - x), Math.min(limit, groups[1] - y), Math.min(limit, groups[2] - z)],
        });
      }
    }
  }
}

/** out and in from a tensor shaped like nn.Linear's weight, and rows = size / width of an activation tensor. */
function linearDimensions(
  op: string,
  [weightRole, weight]: [string, Tensor],
  [activationRole, activation]: [string, Tensor],
  width: 'in' | 'out',
) {
  const [outFeatures, inFeatures] = dimensionsOf(op, [weightRole, weight], ['out', 'in']);
  const columns = width === 'in' ? inFeatures : outFeatures;
  const rows = activation.size / columns;
  if (!Number.isInteger(rows) || rows < 1) {
    throw shapeError(op, [activationRole, activation], `[rows, ${width} ${columns}]`);
  }
  return { outFeatures, inFeatures, rows };
}

/** Options of the linear layer's products: accumulate into the output, an adapter's low-rank term, the products' precision. */
export interface LinearOptions {
  accumulate?: boolean;
  lowRank?: LowRankTerm | null;
  arithmetic?: Arithmetic;
}

/** Options of the products of several layers of one input (q, k and v of a layer) together. */
export type PlanesOptions = Omit<LinearOptions, 'accumulate'>;

/**
 * y[rows, out] = x[rows, in] · W[out, in]^T + bias[out] (+ lowRank)  (PyTorch nn.Linear, weights stored
 * [out, in]); rows = x.size / in
 */
export function linearForward(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  y: Tensor,
  options: LinearOptions = {},
): void {
  const op = 'linearForward';
  const { outFeatures, inFeatures, rows } = linearDimensions(op, ['weight', weight], ['x', x], 'in');
  expectElements(op, ['y', y], [rows, outFeatures], '[rows, out]');
  if (bias) expectElements(op, ['bias', bias], [outFeatures], '[out]');
  matmul(ctx, x, weight, y, { m: rows, n: outFeatures, k: inFeatures, transposeB: true, bias, ...options });
}

/** `count` tensors of one shape in one buffer, entry i from element i * stride (q, k and v of a layer). */
export interface Planes {
  tensor: Tensor;
  stride: number;
  count: number;
}

/**
 * y_i[rows, out] = x[rows, in] · W_i^T + bias_i (+ lowRank_i) for i < count: several linear layers of
 * one input (a layer's q, k and v) as one batched product; weight planes [out, in], bias planes [out],
 * y planes [rows, out]. The low-rank term, if any, is batched the same way (block_lora.ts's loraUpPlanes).
 */
export function linearForwardPlanes(
  ctx: GpuContext,
  x: Tensor,
  weight: Planes,
  bias: Planes,
  y: Planes,
  shape: { out: number; in: number },
  { lowRank = null, arithmetic }: PlanesOptions = {},
): void {
  const op = 'linearForwardPlanes';
  const { count } = weight;
  if (bias.count !== count || y.count !== count)
    throw new RangeError(`${op}: ${count} weight planes, ${bias.count} bias and ${y.count} output planes`);
  const rows = x.size / shape.in;
  if (!Number.isInteger(rows) || rows < 1) throw shapeError(op, ['x', x], `[rows, in ${shape.in}]`);
  matmul(ctx, x, weight.tensor, y.tensor, {
    m: rows,
    n: shape.out,
    k: shape.in,
    batch: count,
    transposeB: true,
    bias: bias.tensor,
    lowRank,
    arithmetic,
    batchStrides: { a: 0, b: weight.stride, bias: bias.stride, out: y.stride },
  });
}

/**
 * dx[rows, in] = sum_i dy_i[rows, out] · W_i[out, in] (+ lowRank): the input gradient of
 * linearForwardPlanes' layers together, dy planes [rows, out], weight planes [out, in]; the low-rank
 * term sums one term per plane (block_lora.ts's loraInputGradientPlanes).
 */
export function linearBackwardInputPlanes(
  ctx: GpuContext,
  dy: Planes,
  weight: Planes,
  dx: Tensor,
  shape: { out: number; in: number },
  { lowRank = null, arithmetic }: PlanesOptions = {},
): void {
  const op = 'linearBackwardInputPlanes';
  const kPlanes = weight.count;
  if (dy.count !== kPlanes) throw new RangeError(`${op}: ${kPlanes} weight planes, ${dy.count} dy planes`);
  const rows = dx.size / shape.in;
  if (!Number.isInteger(rows) || rows < 1) throw shapeError(op, ['dx', dx], `[rows, in ${shape.in}]`);
  matmul(ctx, dy.tensor, weight.tensor, dx, {
    m: rows,
    n: shape.in,
    k: shape.out,
    kPlanes,
    lowRank,
    arithmetic,
    batchStrides: { a: dy.stride, b: weight.stride },
  });
}

/** dx[rows, in] (+)= dy[rows, out] · W[out, in] (+ lowRank) */
export function linearBackwardInput(
  ctx: GpuContext,
  dy: Tensor,
  weight: Tensor,
  dx: Tensor,
  options: LinearOptions = {},
): void {
  const op = 'linearBackwardInput';
  const { outFeatures, inFeatures, rows } = linearDimensions(op, ['weight', weight], ['dy', dy], 'out');
  expectElements(op, ['dx', dx], [rows, inFeatures], '[rows, in]');
  matmul(ctx, dy, weight, dx, { m: rows, n: inFeatures, k: outFeatures, ...options });
}

/** dW[out, in] (+)= dy[rows, out]^T · x[rows, in]; dBias[out] (+)= column sums of dy (when given) */
export function linearBackwardWeight(
  ctx: GpuContext,
  dy: Tensor,
  x: Tensor,
  dWeight: Tensor,
  dBias: Tensor | null,
  options: { accumulate?: boolean } = {},
): void {
  const op = 'linearBackwardWeight';
  const { outFeatures, inFeatures, rows } = linearDimensions(op, ['dWeight', dWeight], ['x', x], 'in');
  expectElements(op, ['dy', dy], [rows, outFeatures], '[rows, out]');
  if (dBias) expectElements(op, ['dBias', dBias], [outFeatures], '[out]');
  const accumulate = options.accumulate ?? false;
  matmul(ctx, dy, x, dWeight, { m: outFeatures, n: inFeatures, k: rows, transposeA: true, accumulate });
  if (dBias) {
    // One thread per column sums the rows: a sweep of dy, small beside the dWeight product.
    ctx.dispatch({
      shader: SHADER,
      entry: 'column_sums',
      params: matmulParams({
        m: rows,
        n: outFeatures,
        k: 0,
        strides: NO_BATCH,
        kPlanes: 1,
        firstWorkgroup: [0, 0, 0],
        alpha: 1,
        accumulate,
        lowRank: null,
      }),
      bindings: { a: dy, out: dBias },
      workgroups: grid1d(outFeatures, COLUMN_SUMS_WORKGROUP),
    });
  }
}
