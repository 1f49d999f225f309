// Block-LoRA (plain LoRA is n = 1): block sum, shared down-projection and weight gradients
// (shaders/block_lora.wgsl); the up-projection and the adapter's share of dx as low-rank terms that
// matmul.wgsl adds while it stores the frozen layer's product. Activations are [..., width]: every
// dimension but the last is a row.

import type { GpuContext } from '../gpu/context';
import type { ParamValues } from '../gpu/params';
import { shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { checkDropout, dropoutParams, NO_DROPOUT, type LoraDropout } from './dropout';
import { grid1d } from './grid';
import type { LowRankTerm, Planes } from './matmul';
import { dimensionsOf, expectShape } from './shapes';
import { isCpuAdapter } from './tuning';

const SHADER = 'block_lora';
/** Rank columns one workgroup of project / weight_gradients computes. */
const RANK_CHUNK = shaderInterface(SHADER).constant('RANK_CHUNK');
const ELEMENT_THREADS = shaderInterface(SHADER).constant('ELEMENT_THREADS');
/**
 * project's workgroup (threads per row, rows) and weight_gradients' tile (the grid is cut by
 * GRADIENT_COLUMNS): override constants of the shader. On SwiftShader, a tiny-CLIP training step
 * (batch 16, q/k/v adapters) spent 936 ms in project with 64 threads per row and 30-66 ms with 4-8,
 * and 122 ms in weight_gradients with 8 row lanes against 27-31 ms with 1: barriers dominate there, and
 * so does the count of workgroups, so a thread takes a whole row, 64 rows a workgroup. GPUs keep the
 * wide shapes.
 */
function tuningFor(ctx: GpuContext) {
  return isCpuAdapter(ctx)
    ? {
        project: { PROJECT_THREADS: 1, PROJECT_ROWS: 64 },
        gradientTile: { GRADIENT_COLUMNS: 32, GRADIENT_ROW_LANES: 1 },
      }
    : {
        project: { PROJECT_THREADS: 64, PROJECT_ROWS: 1 },
        gradientTile: { GRADIENT_COLUMNS: 32, GRADIENT_ROW_LANES: 8 },
      };
}

/** Where weight element (c, j) lives: c along the wide side (d_in or d_out), j along the block rank b. */
interface WeightLayout {
  widthStride: number;
  rankStride: number;
}

/** A_s and dA_s, stored [b, d_in]. */
function layoutOfA(dIn: number): WeightLayout {
  return { widthStride: 1, rankStride: dIn };
}

/** sum_i B_i, every B_i and every dB_i, stored [d_out, b]. */
function layoutOfB(rank: number): WeightLayout {
  return { widthStride: rank, rankStride: 1 };
}

/** A product between a wide activation [rows, width] and a weight [width, rank] (see the shader). */
interface ThinProduct {
  rows: number;
  width: number;
  rank: number;
  layout: WeightLayout;
  scale: number;
  dropout: LoraDropout;
}

/** project's planes: several products at once, plane i from i * each stride (see the shader's Params). */
interface ProjectPlanes {
  count: number;
  wideStride: number;
  weightStride: number;
  outStride: number;
}

interface KernelParams extends Partial<ThinProduct> {
  planes?: ProjectPlanes;
  blockCount?: number;
  blockSize?: number;
  accumulate?: boolean;
  aWidth?: number;
  bColumnTiles?: number;
}

/** block_lora.wgsl's Params; an entry point ignores the fields it does not use. */
function kernelParams(k: KernelParams): ParamValues {
  return {
    rows: k.rows ?? 0,
    width: k.width ?? 0,
    rank: k.rank ?? 0,
    weightRankStride: k.layout?.rankStride ?? 0,
    weightWidthStride: k.layout?.widthStride ?? 0,
    blockCount: k.blockCount ?? 1,
    blockSize: k.blockSize ?? 0,
    accumulate: k.accumulate ?? false,
    scale: k.scale ?? 1,
    ...dropoutParams(k.dropout ?? NO_DROPOUT),
    aWidth: k.aWidth ?? 0,
    bColumnTiles: k.bColumnTiles ?? 0,
    planes: k.planes?.count ?? 1,
    widePlaneStride: k.planes?.wideStride ?? 0,
    weightPlaneStride: k.planes?.weightStride ?? 0,
    outPlaneStride: k.planes?.outStride ?? 0,
  };
}

function rankChunks(rank: number): number {
  return Math.ceil(rank / RANK_CHUNK);
}

/** thin[rows, rank] = scale * drop(wide) W, or `planes` such products at once. */
function project(
  ctx: GpuContext,
  wide: Tensor,
  weight: Tensor,
  thin: Tensor,
  product: ThinProduct,
  planes?: ProjectPlanes,
): void {
  const constants = tuningFor(ctx).project;
  const [x, y] = grid1d(product.rows, constants.PROJECT_ROWS);
  ctx.dispatch({
    shader: SHADER,
    entry: 'project',
    constants,
    params: kernelParams({ ...product, planes }),
    bindings: { wide, weight, out: thin },
    workgroups: [x, y, rankChunks(product.rank) * (planes?.count ?? 1)],
  });
}

/**
 * dB_i (+)= scale * g^T u into every block i, and dA_s (+)= du^T drop(x), in one dispatch.
 * `throughB` and `throughA` describe the two products (loraBackward).
 */
function weightGradients(
  ctx: GpuContext,
  g: Tensor,
  u: Tensor,
  dBlocks: Tensor,
  x: Tensor,
  du: Tensor,
  dA: Tensor,
  throughB: ThinProduct,
  throughA: ThinProduct,
  blockCount: number,
  accumulate: boolean,
): void {
  const tile = tuningFor(ctx).gradientTile;
  const bColumnTiles = Math.ceil(throughB.width / tile.GRADIENT_COLUMNS);
  const aColumnTiles = Math.ceil(throughA.width / tile.GRADIENT_COLUMNS);
  ctx.dispatch({
    shader: SHADER,
    entry: 'weight_gradients',
    constants: tile,
    params: kernelParams({
      ...throughB,
      blockCount,
      blockSize: throughB.width * throughB.rank,
      accumulate,
      dropout: throughA.dropout,
      aWidth: throughA.width,
      bColumnTiles,
    }),
    bindings: { wide: g, thin: u, out: dBlocks, x, du, dA },
    workgroups: [bColumnTiles + aColumnTiles, 1, rankChunks(throughB.rank)],
  });
}

// ---- shape checks -----------------------------------------------------------------------------

/** The leading dimensions (the rows) of activation x [..., width]. */
function leadingDimensions(op: string, x: Tensor, width: number): number[] {
  const leading = x.shape.slice(0, -1);
  expectShape(op, x, [...leading, width]);
  return leading;
}

function rowCount(leading: readonly number[]): number {
  return leading.reduce((product, d) => product * d, 1);
}

// ---- public API -------------------------------------------------------------------------------

/** Where one adapted matrix's blocks [n, d_out, b] and their sum [d_out, b] start in two flat tensors. */
export interface BlockSumPlacement {
  blocksOffset: number;
  sumOffset: number;
  /** d_out * b: the elements of one block, and of the sum. */
  blockSize: number;
}

/** The placements of every adapted matrix of a set, uploaded once, for sumBlocks. */
export class BlockSumTable {
  readonly buffer: GPUBuffer;
  readonly largestBlock: number;

  constructor(
    private readonly ctx: GpuContext,
    readonly placements: readonly BlockSumPlacement[],
    readonly blockCount: number,
  ) {
    if (placements.length === 0) throw new RangeError('BlockSumTable: no adapted matrices');
    const entries = new Uint32Array(4 * placements.length);
    placements.forEach(({ sumOffset, blocksOffset, blockSize }, i) =>
      entries.set([sumOffset, blocksOffset, blockSize, 0], 4 * i),
    );
    this.largestBlock = Math.max(...placements.map((p) => p.blockSize));
    this.buffer = ctx.memory.track(
      ctx.device.createBuffer({
        label: 'block sums table',
        size: entries.byteLength,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      }),
    );
    // A new buffer: no recorded command reads it yet, so the queue write needs no submit to keep program order.
    ctx.device.queue.writeBuffer(this.buffer, 0, entries);
  }

  destroy(): void {
    this.ctx.memory.release(this.buffer);
  }
}

/**
 * For every placement of the table, sums [d_out, b] = blocks[0] + ... + blocks[n - 1] in block order
 * (n - 1 additions), reading the blocks from `flatBlocks` and writing the sums into `flatSums`: one
 * dispatch for all adapted matrices.
 */
export function sumBlocks(ctx: GpuContext, flatBlocks: Tensor, flatSums: Tensor, table: BlockSumTable): void {
  const { blockCount } = table;
  if (!Number.isInteger(blockCount) || blockCount < 1)
    throw new RangeError(`sumBlocks: block count must be a positive integer, got ${blockCount}`);
  for (const { blocksOffset, sumOffset, blockSize } of table.placements) {
    if (blocksOffset + blockCount * blockSize > flatBlocks.size || sumOffset + blockSize > flatSums.size) {
      throw new RangeError(
        `sumBlocks: ${blockCount} blocks of ${blockSize} at ${blocksOffset} and their sum at ${sumOffset} ` +
          `do not fit in ${flatBlocks.label} (${flatBlocks.size}) and ${flatSums.label} (${flatSums.size})`,
      );
    }
  }
  ctx.dispatch({
    shader: SHADER,
    entry: 'sum_blocks',
    params: kernelParams({ blockCount }),
    bindings: { out: flatSums, blocks: flatBlocks, blockSumsTable: table.buffer },
    workgroups: [Math.ceil(table.largestBlock / ELEMENT_THREADS), table.placements.length],
  });
}

/** u [..., b] = drop(x) A_s^T for x [..., d_in] and a = A_s [b, d_in]: the shared down-projection. */
export function loraDown(ctx: GpuContext, x: Tensor, a: Tensor, u: Tensor, dropout: LoraDropout): void {
  const [rank, dIn] = dimensionsOf('loraDown', a, ['b', 'd_in']);
  const leading = leadingDimensions('loraDown', x, dIn);
  expectShape('loraDown', u, [...leading, rank]);
  checkDropout('loraDown', dropout);
  project(ctx, x, a, u, { rows: rowCount(leading), width: dIn, rank, layout: layoutOfA(dIn), scale: 1, dropout });
}

/**
 * The down-projections of adapters on linear layers of one input x [..., d_in] (q, k and v) in one
 * dispatch: u planes [..., b] = drop_i(x) A_i^T for A_s planes [b, d_in], adapter i masking with
 * planeSeed(dropout.seed, i) (dropoutFor gives q, k and v those seeds).
 */
export function loraDownPlanes(
  ctx: GpuContext,
  x: Tensor,
  a: Planes,
  u: Planes,
  shape: { dIn: number; b: number },
  dropout: LoraDropout,
): void {
  const op = 'loraDownPlanes';
  const { dIn, b } = shape;
  const rows = rowCount(leadingDimensions(op, x, dIn));
  checkDropout(op, dropout);
  if (a.count !== u.count) throw new RangeError(`${op}: ${a.count} A_s planes for ${u.count} u planes`);
  for (const [role, planes, size] of [
    ['A_s', a, b * dIn],
    ['u', u, rows * b],
  ] as const) {
    const reach = (planes.count - 1) * planes.stride + size;
    if (planes.stride < size || planes.tensor.size < reach) {
      throw new RangeError(
        `${op}: ${role} planes "${planes.tensor.label}" (${planes.tensor.size} elements) do not hold ${planes.count} of ${size}, one every ${planes.stride}`,
      );
    }
  }
  project(
    ctx,
    x,
    a.tensor,
    u.tensor,
    { rows, width: dIn, rank: b, layout: layoutOfA(dIn), scale: 1, dropout },
    { count: a.count, wideStride: 0, weightStride: a.stride, outStride: u.stride },
  );
}

/**
 * The adapter's output as linearForward's low-rank term: h [..., d_out] = x W0^T + b + scale * u bSum^T,
 * for u [..., b] (loraDown's) and bSum [d_out, b].
 */
export function loraUp(u: Tensor, bSum: Tensor, scale: number): LowRankTerm {
  const [, rank] = dimensionsOf('loraUp', bSum, ['d_out', 'b']);
  leadingDimensions('loraUp', u, rank);
  const { widthStride, rankStride } = layoutOfB(rank);
  return {
    thin: u,
    weight: bSum,
    rank,
    weightWidthStride: widthStride,
    weightRankStride: rankStride,
    scale,
    dropout: NO_DROPOUT,
  };
}

/**
 * The up-projections of adapters on linear layers of one input (q, k and v), batched as
 * linearForwardPlanes runs them: u planes [..., b] (each adapter's loraDown) and bSum planes [d_out, b].
 */
export function loraUpPlanes(u: Planes, bSum: Planes, shape: { dOut: number; b: number }, scale: number): LowRankTerm {
  if (u.count !== bSum.count) throw new RangeError(`loraUpPlanes: ${u.count} u planes for ${bSum.count} bSum planes`);
  const { widthStride, rankStride } = layoutOfB(shape.b);
  return {
    thin: u.tensor,
    weight: bSum.tensor,
    rank: shape.b,
    weightWidthStride: widthStride,
    weightRankStride: rankStride,
    scale,
    dropout: NO_DROPOUT,
    thinBatchStride: u.stride,
    weightBatchStride: bSum.stride,
  };
}

/**
 * The adapter's share of the input gradient as linearBackwardInput's low-rank term:
 * dx [..., d_in] = dy W0 + drop'(du A_s), for du [..., b] (loraBackward's) and a = A_s [b, d_in], with
 * the forward's dropout (the mask of x, by the same flat index).
 */
export function loraInputGradient(du: Tensor, a: Tensor, dropout: LoraDropout): LowRankTerm {
  const [rank, dIn] = dimensionsOf('loraInputGradient', a, ['b', 'd_in']);
  leadingDimensions('loraInputGradient', du, rank);
  checkDropout('loraInputGradient', dropout);
  const { widthStride, rankStride } = layoutOfA(dIn);
  return { thin: du, weight: a, rank, weightWidthStride: widthStride, weightRankStride: rankStride, scale: 1, dropout };
}

/**
 * The input-gradient shares of adapters on linear layers of one input (q, k and v), as
 * linearBackwardInputPlanes sums them: du planes [..., b] (each adapter's loraBackward), A_s planes
 * [b, d_in], and the dropout of the first adapter (entry i masks with planeSeed(seed, i): dropoutFor).
 */
export function loraInputGradientPlanes(
  du: Planes,
  a: Planes,
  shape: { dIn: number; b: number },
  dropout: LoraDropout,
): LowRankTerm {
  if (du.count !== a.count)
    throw new RangeError(`loraInputGradientPlanes: ${du.count} du planes for ${a.count} A_s planes`);
  checkDropout('loraInputGradientPlanes', dropout);
  const { widthStride, rankStride } = layoutOfA(shape.dIn);
  return {
    thin: du.tensor,
    weight: a.tensor,
    rank: shape.b,
    weightWidthStride: widthStride,
    weightRankStride: rankStride,
    scale: 1,
    dropout,
    thinBatchStride: du.stride,
    weightBatchStride: a.stride,
  };
}

/**
 * Backward to the adapter's parameters: du (scratch [M, b]) = s g bSum; dBlocks (+)= s g^T u into
 * every block; dA (+)= du^T drop(x). The share of dx follows from du: loraInputGradient.
 *
 * Shapes: g [..., d_out], x [..., d_in], u and du [..., b], a and dA [b, d_in], bSum [d_out, b], dBlocks
 * [n, d_out, b]. `accumulate` (default false) makes dA and dBlocks add to what they hold (gradient
 * accumulation over micro-batches) instead of overwriting it.
 */
export function loraBackward(
  ctx: GpuContext,
  g: Tensor,
  x: Tensor,
  u: Tensor,
  a: Tensor,
  bSum: Tensor,
  du: Tensor,
  dA: Tensor,
  dBlocks: Tensor,
  scale: number,
  dropout: LoraDropout,
  options: { accumulate?: boolean } = {},
): void {
  const op = 'loraBackward';
  const [rank, dIn] = dimensionsOf(op, a, ['b', 'd_in']);
  const [dOut] = dimensionsOf(op, bSum, ['d_out', 'b']);
  const [blockCount] = dimensionsOf(op, dBlocks, ['n', 'd_out', 'b']);
  const leading = leadingDimensions(op, x, dIn);
  expectShape(op, bSum, [dOut, rank]);
  expectShape(op, dBlocks, [blockCount, dOut, rank]);
  expectShape(op, dA, [rank, dIn]);
  expectShape(op, g, [...leading, dOut]);
  expectShape(op, u, [...leading, rank]);
  expectShape(op, du, [...leading, rank]);
  checkDropout(op, dropout);
  const accumulate = options.accumulate ?? false;
  const rows = rowCount(leading);
  // The adapter's two thin products: through bSum (width d_out) and through A_s (width d_in, dropout's side).
  const throughB: ThinProduct = { rows, width: dOut, rank, layout: layoutOfB(rank), scale, dropout: NO_DROPOUT };
  const throughA: ThinProduct = { rows, width: dIn, rank, layout: layoutOfA(dIn), scale: 1, dropout };

  project(ctx, g, bSum, du, throughB);
  // dL/dB_i does not depend on i: one reduction, written into every block.
  weightGradients(ctx, g, u, dBlocks, x, du, dA, throughB, throughA, blockCount, accumulate);
}
