// CLIP's contrastive classification head (shaders/classifier.wgsl): L2 normalisation of features,
// scaled cosine logits and softmax cross-entropy, each forward and backward. Matrices are read as
// [rows, last dimension]; outputs must not share a buffer with inputs.

import type { GpuContext } from '../gpu/context';
import { shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './grid';
import { expectElements, shapeError } from './shapes';
import { isCpuAdapter } from './tuning';

const SHADER = 'classifier';
const WORKGROUP_SIZE = shaderInterface(SHADER).constant('WORKGROUP_SIZE');
const PRODUCT_TILE = shaderInterface(SHADER).constant('TILE'); // scaled_product's tile of the output

/**
 * Threads per row of the row reductions (L2 normalisation, softmax cross-entropy): the ROW_THREADS
 * override. On SwiftShader, a tiny-CLIP training step (batch 4, 10 classes) spent 13 ms of its 90 ms
 * in l2_normalize forward and backward with 256 threads, whose barriers dominate there; 8 threads
 * as in layer norm. GPUs keep 256.
 */
function rowThreads(ctx: GpuContext) {
  return { ROW_THREADS: isCpuAdapter(ctx) ? 8 : 256 };
}

/** The [rows, columns] view of a tensor whose last dimension is the row width. */
function matrixShape(tensor: Tensor): [number, number] {
  const columns = tensor.shape.length ? tensor.shape[tensor.shape.length - 1] : 1;
  return [columns ? tensor.size / columns : 0, columns];
}

function expectMatrix(op: string, tensor: Tensor, rows: number, columns: number): void {
  const [actualRows, actualColumns] = matrixShape(tensor);
  if (actualRows !== rows || actualColumns !== columns) {
    throw shapeError(op, tensor, `[${rows}, ${columns}] as [rows, last dimension]`);
  }
}

/** How scaled_product reads its operands: A(row, k) = a[row * aRowStride + k * aInnerStride], B(k, column) likewise. */
interface ProductLayout {
  rows: number;
  columns: number;
  inner: number;
  aRowStride: number;
  aInnerStride: number;
  bInnerStride: number;
  bColumnStride: number;
}

type ClassifierParams = Pick<ProductLayout, 'rows' | 'columns'> &
  Partial<ProductLayout> & { scale?: number; accumulate?: boolean };

/** classifier.wgsl's Params; the fields an entry point does not read are zero. */
function packParams(fields: ClassifierParams) {
  const {
    rows,
    columns,
    inner = 0,
    aRowStride = 0,
    aInnerStride = 0,
    bInnerStride = 0,
    bColumnStride = 0,
    scale = 0,
    accumulate = false,
  } = fields;
  return { rows, columns, inner, aRowStride, aInnerStride, bInnerStride, bColumnStride, scale, accumulate };
}

/** out = x / max(||x||, 1e-12) row by row (F.normalize); norms [rows] saves the divisor for the backward. */
export function l2NormalizeForward(ctx: GpuContext, x: Tensor, out: Tensor, norms: Tensor): void {
  const op = 'l2NormalizeForward';
  const [rows, columns] = matrixShape(x);
  expectMatrix(op, out, rows, columns);
  expectElements(op, norms, rows, 'one per row');
  ctx.dispatch({
    shader: SHADER,
    entry: 'l2_normalize_forward',
    constants: rowThreads(ctx),
    params: packParams({ rows, columns }),
    bindings: { x, normalized: out, norms },
    workgroups: grid1d(rows, 1),
  });
}

/** dx (+)= (dout - y (dout . y)) / norm row by row, from the forward's output y and norms. */
export function l2NormalizeBackward(
  ctx: GpuContext,
  dout: Tensor,
  normalized: Tensor,
  norms: Tensor,
  dx: Tensor,
  options: { accumulate?: boolean } = {},
): void {
  const op = 'l2NormalizeBackward';
  const [rows, columns] = matrixShape(normalized);
  expectMatrix(op, dout, rows, columns);
  expectMatrix(op, dx, rows, columns);
  expectElements(op, norms, rows, 'one per row');
  ctx.dispatch({
    shader: SHADER,
    entry: 'l2_normalize_backward',
    constants: rowThreads(ctx),
    params: packParams({ rows, columns, accumulate: options.accumulate }),
    bindings: { normalized, norms, dout, dx },
    workgroups: grid1d(rows, 1),
  });
}

/** product[rows, columns] (+)= scale * A B. */
function scaledProduct(
  ctx: GpuContext,
  a: Tensor,
  b: Tensor,
  product: Tensor,
  layout: ProductLayout,
  scale: number,
  accumulate: boolean,
): void {
  ctx.dispatch({
    shader: SHADER,
    entry: 'scaled_product',
    params: packParams({ ...layout, scale, accumulate }),
    bindings: { a, b, product },
    workgroups: [Math.ceil(layout.columns / PRODUCT_TILE), Math.ceil(layout.rows / PRODUCT_TILE)],
  });
}

function cosineLogitsShapes(op: string, imageFeatures: Tensor, textFeatures: Tensor, logits: Tensor) {
  const [batch, width] = matrixShape(imageFeatures);
  const classes = matrixShape(textFeatures)[0];
  expectMatrix(op, textFeatures, classes, width);
  expectMatrix(op, logits, batch, classes);
  return { batch, classes, width };
}

/** logits[B, C] = scale * img[B, D] · txt[C, D]^T for L2-normalised features */
export function cosineLogitsForward(
  ctx: GpuContext,
  imageFeatures: Tensor,
  textFeatures: Tensor,
  logits: Tensor,
  scale: number,
): void {
  const { batch, classes, width } = cosineLogitsShapes('cosineLogitsForward', imageFeatures, textFeatures, logits);
  // A(b, d) = img[b, d]; B(d, c) = txt[c, d].
  scaledProduct(
    ctx,
    imageFeatures,
    textFeatures,
    logits,
    {
      rows: batch,
      columns: classes,
      inner: width,
      aRowStride: width,
      aInnerStride: 1,
      bInnerStride: 1,
      bColumnStride: width,
    },
    scale,
    false,
  );
}

/** dImage[B, D] (+)= scale * dLogits · txt; dText[C, D] (+)= scale * dLogits^T · img (either may be null) */
export function cosineLogitsBackward(
  ctx: GpuContext,
  dLogits: Tensor,
  imageFeatures: Tensor,
  textFeatures: Tensor,
  dImage: Tensor | null,
  dText: Tensor | null,
  scale: number,
  options: { accumulate?: boolean } = {},
): void {
  const op = 'cosineLogitsBackward';
  const { batch, classes, width } = cosineLogitsShapes(op, imageFeatures, textFeatures, dLogits);
  const accumulate = options.accumulate ?? false;
  if (dImage) {
    expectMatrix(op, dImage, batch, width);
    // A(b, c) = dLogits[b, c]; B(c, d) = txt[c, d].
    scaledProduct(
      ctx,
      dLogits,
      textFeatures,
      dImage,
      {
        rows: batch,
        columns: width,
        inner: classes,
        aRowStride: classes,
        aInnerStride: 1,
        bInnerStride: width,
        bColumnStride: 1,
      },
      scale,
      accumulate,
    );
  }
  if (dText) {
    expectMatrix(op, dText, classes, width);
    // A(c, b) = dLogits[b, c]; B(b, d) = img[b, d].
    scaledProduct(
      ctx,
      dLogits,
      imageFeatures,
      dText,
      {
        rows: classes,
        columns: width,
        inner: batch,
        aRowStride: 1,
        aInnerStride: classes,
        bInnerStride: width,
        bColumnStride: 1,
      },
      scale,
      accumulate,
    );
  }
}

/**
 * Per-row loss = logsumexp(logits) - logits[label]; probs = softmax(logits). labels: f32 class
 * indices [B], which must lie in [0, C): the GPU cannot report a bad one (validate where they are made).
 */
export function softmaxCrossEntropyForward(
  ctx: GpuContext,
  logits: Tensor,
  labels: Tensor,
  losses: Tensor,
  probs: Tensor,
): void {
  const op = 'softmaxCrossEntropyForward';
  const [rows, columns] = matrixShape(logits);
  if (columns === 0) throw shapeError(op, logits, 'at least one class');
  expectElements(op, labels, rows, 'one per row');
  expectElements(op, losses, rows, 'one per row');
  expectMatrix(op, probs, rows, columns);
  ctx.dispatch({
    shader: SHADER,
    entry: 'softmax_cross_entropy_forward',
    constants: rowThreads(ctx),
    params: packParams({ rows, columns }),
    bindings: { logits, labels, losses, probs },
    workgroups: grid1d(rows, 1),
  });
}

/** dLogits = (probs - onehot(label)) * lossScale  (lossScale = 1/B for the batch mean, times any accumulation factor) */
export function softmaxCrossEntropyBackward(
  ctx: GpuContext,
  probs: Tensor,
  labels: Tensor,
  dLogits: Tensor,
  lossScale: number,
): void {
  const op = 'softmaxCrossEntropyBackward';
  const [rows, columns] = matrixShape(probs);
  expectElements(op, labels, rows, 'one per row');
  expectMatrix(op, dLogits, rows, columns);
  ctx.dispatch({
    shader: SHADER,
    entry: 'softmax_cross_entropy_backward',
    params: packParams({ rows, columns, scale: lossScale }),
    bindings: { labels, probs, dlogits: dLogits },
    workgroups: grid1d(rows * columns, WORKGROUP_SIZE),
  });
}
