// Patch extraction, CLIP's vision and text input embeddings, and row pooling (shaders/embedding.wgsl).

import type { GpuContext } from '../gpu/context';
import { shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './grid';
import { expectElements, expectPositiveIntegers, shapeError } from './shapes';

const SHADER = 'embedding';
const WORKGROUP_SIZE = shaderInterface(SHADER).constant('WORKGROUP_SIZE');

// Tensors are checked by element count, so any view of the shape will do ([B*N, D] for [B, N, D]).

/** Rows of a [rows, width] table, or a RangeError naming the tensor if its size is not a multiple of width. */
function tableRows(op: string, table: Tensor, width: number): number {
  const rows = table.size / width;
  if (!Number.isInteger(rows) || rows < 1) {
    throw shapeError(op, table, `[rows, ${width}]`);
  }
  return rows;
}

/** embedding.wgsl's Params; the fields an entry point does not read are zero. */
function embeddingParams(sizes: {
  batch: number;
  length: number;
  width: number;
  vocab?: number;
  patchSize?: number;
  imageSize?: number;
}) {
  const { batch, length, width, vocab = 0, patchSize = 0, imageSize = 0 } = sizes;
  return { batch, length, width, vocab, patchSize, imageSize };
}

/**
 * Patch extraction for the patch-embedding convolution (stride = kernel = P, no bias): pixels [B, 3, S, S] -> patches
 * [B * (S/P)^2, 3*P*P], row order (b, patchRow, patchCol), column order (channel, ky, kx) = the flattened conv weight
 * [D, 3, P, P]. The conv is then linearForward(patches, weight viewed as [D, 3*P*P]).
 */
export function extractPatches(
  ctx: GpuContext,
  pixels: Tensor,
  patches: Tensor,
  shape: { batch: number; imageSize: number; patchSize: number },
): void {
  const op = 'extractPatches';
  const { batch, imageSize, patchSize } = shape;
  expectPositiveIntegers(op, shape);
  if (imageSize % patchSize !== 0)
    throw new RangeError(`${op}: imageSize ${imageSize} is not a multiple of patchSize ${patchSize}`);
  const patchCount = (imageSize / patchSize) ** 2;
  const patchValues = 3 * patchSize * patchSize;
  expectElements(op, pixels, [batch, 3, imageSize, imageSize]);
  expectElements(op, patches, [batch * patchCount, patchValues]);
  ctx.dispatch({
    shader: SHADER,
    entry: 'extract_patches',
    params: embeddingParams({ batch, length: patchCount, width: patchValues, patchSize, imageSize }),
    bindings: { pixels, out: patches },
    workgroups: grid1d(patches.size, WORKGROUP_SIZE),
  });
}

/** CLIPVisionEmbeddings after the conv: out[b, 0] = classEmbedding + pos[0]; out[b, 1 + p] = patchFeatures[b * N + p] + pos[1 + p]. out [B, 1+N, D]. */
export function visionEmbeddingsForward(
  ctx: GpuContext,
  patchFeatures: Tensor,
  classEmbedding: Tensor,
  positionEmbedding: Tensor,
  out: Tensor,
  shape: { batch: number; patches: number; hidden: number },
): void {
  const op = 'visionEmbeddingsForward';
  const { batch, patches, hidden } = shape;
  expectPositiveIntegers(op, shape);
  expectElements(op, patchFeatures, [batch * patches, hidden]);
  expectElements(op, classEmbedding, [hidden]);
  expectElements(op, positionEmbedding, [1 + patches, hidden]);
  expectElements(op, out, [batch, 1 + patches, hidden]);
  ctx.dispatch({
    shader: SHADER,
    entry: 'vision_embeddings_forward',
    params: embeddingParams({ batch, length: patches, width: hidden }),
    bindings: { patchFeatures, classEmbedding, positionEmbedding, out },
    workgroups: grid1d(out.size, WORKGROUP_SIZE),
  });
}

/**
 * CLIPTextEmbeddings: out[b, t] = tokenEmbedding[ids[b, t]] + positionEmbedding[t]. ids: [B, T] token ids stored as f32
 * (exact below 2^24). out [B, T, D]. tokenEmbedding is [vocab, D]; positionEmbedding may hold more than T rows (CLIP has
 * 77) and its first T are used. An id outside [0, vocab) makes its output row NaN. tokenEmbedding may be
 * stored in half precision (f16).
 */
export function textEmbeddingsForward(
  ctx: GpuContext,
  ids: Tensor,
  tokenEmbedding: Tensor,
  positionEmbedding: Tensor,
  out: Tensor,
  shape: { batch: number; seqLen: number; hidden: number },
): void {
  const op = 'textEmbeddingsForward';
  const { batch, seqLen, hidden } = shape;
  expectPositiveIntegers(op, shape);
  expectElements(op, ids, [batch, seqLen]);
  const vocab = tableRows(op, tokenEmbedding, hidden);
  const positions = tableRows(op, positionEmbedding, hidden);
  if (positions < seqLen) {
    throw new RangeError(`${op}: ${positionEmbedding.label} has ${positions} positions, fewer than seqLen ${seqLen}`);
  }
  expectElements(op, out, [batch, seqLen, hidden]);
  const half = tokenEmbedding.type === 'f16';
  ctx.dispatch({
    shader: SHADER,
    entry: 'text_embeddings_forward',
    constants: { F16_TOKEN_EMBEDDING: Number(half) },
    params: embeddingParams({ batch, length: seqLen, width: hidden, vocab }),
    bindings: {
      tokenIds: ids,
      tokenEmbedding: half ? positionEmbedding : tokenEmbedding,
      tokenEmbeddingHalf: tokenEmbedding,
      positionEmbedding,
      out,
    },
    workgroups: grid1d(out.size, WORKGROUP_SIZE),
  });
}

/**
 * Pooling: out[b] = x[b, rows[b]] for x [B, T, D]; rows: [B] f32 row indices (0 for the vision class token, the
 * end-of-text position for text). A row outside [0, T) makes out[b] NaN.
 */
export function gatherRowsForward(
  ctx: GpuContext,
  x: Tensor,
  rows: Tensor,
  out: Tensor,
  shape: { batch: number; seqLen: number; hidden: number },
): void {
  const op = 'gatherRowsForward';
  const { batch, seqLen, hidden } = shape;
  expectPositiveIntegers(op, shape);
  expectElements(op, x, [batch, seqLen, hidden]);
  expectElements(op, rows, [batch]);
  expectElements(op, out, [batch, hidden]);
  ctx.dispatch({
    shader: SHADER,
    entry: 'gather_rows_forward',
    params: embeddingParams({ batch, length: seqLen, width: hidden }),
    bindings: { x, pooledRows: rows, out },
    workgroups: grid1d(out.size, WORKGROUP_SIZE),
  });
}

/**
 * Backward of the pooling: dx[b, rows[b]] += dout[b]; every other row of dx untouched (caller zeroes dx first unless
 * accumulating). A row outside [0, T) contributes nothing.
 */
export function gatherRowsBackward(
  ctx: GpuContext,
  dout: Tensor,
  rows: Tensor,
  dx: Tensor,
  shape: { batch: number; seqLen: number; hidden: number },
): void {
  const op = 'gatherRowsBackward';
  const { batch, seqLen, hidden } = shape;
  expectPositiveIntegers(op, shape);
  expectElements(op, dout, [batch, hidden]);
  expectElements(op, rows, [batch]);
  expectElements(op, dx, [batch, seqLen, hidden]);
  ctx.dispatch({
    shader: SHADER,
    entry: 'gather_rows_backward',
    params: embeddingParams({ batch, length: seqLen, width: hidden }),
    bindings: { pooledRows: rows, dout, dx },
    workgroups: grid1d(dout.size, WORKGROUP_SIZE),
  });
}
