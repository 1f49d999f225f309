// Plain float64 references for shaders/embedding.wgsl, plus the direct patch convolution that
// extract_patches followed by a linear layer must reproduce.

export function extractPatches(
  pixels: ArrayLike<number>,
  batch: number,
  imageSize: number,
  patchSize: number,
): Float64Array {
  const side = imageSize / patchSize;
  const patchValues = 3 * patchSize * patchSize;
  const out = new Float64Array(batch * side * side * patchValues);
  let i = 0;
  for (let b = 0; b < batch; b++)
    for (let patchRow = 0; patchRow < side; patchRow++)
      for (let patchCol = 0; patchCol < side; patchCol++)
        for (let c = 0; c < 3; c++)
          for (let ky = 0; ky < patchSize; ky++)
            for (let kx = 0; kx < patchSize; kx++) {
              const y = patchRow * patchSize + ky;
              const x = patchCol * patchSize + kx;
              out[i++] = pixels[((b * 3 + c) * imageSize + y) * imageSize + x];
            }
  return out;
}

/** Conv2d with stride = kernel = P and no bias, as PyTorch computes it: weight [D, 3, P, P] -> out [B, (S/P)^2, D]. */
export function patchConvolution(
  pixels: ArrayLike<number>,
  weight: ArrayLike<number>,
  batch: number,
  imageSize: number,
  patchSize: number,
  hidden: number,
): Float64Array {
  const side = imageSize / patchSize;
  const out = new Float64Array(batch * side * side * hidden);
  for (let b = 0; b < batch; b++)
    for (let patchRow = 0; patchRow < side; patchRow++)
      for (let patchCol = 0; patchCol < side; patchCol++)
        for (let d = 0; d < hidden; d++) {
          let sum = 0;
          for (let c = 0; c < 3; c++)
            for (let ky = 0; ky < patchSize; ky++)
              for (let kx = 0; kx < patchSize; kx++) {
                const pixel =
                  pixels[((b * 3 + c) * imageSize + patchRow * patchSize + ky) * imageSize + patchCol * patchSize + kx];
                sum += pixel * weight[((d * 3 + c) * patchSize + ky) * patchSize + kx];
              }
          out[((b * side + patchRow) * side + patchCol) * hidden + d] = sum;
        }
  return out;
}

export function visionEmbeddings(
  patchFeatures: ArrayLike<number>,
  classEmbedding: ArrayLike<number>,
  positionEmbedding: ArrayLike<number>,
  batch: number,
  patches: number,
  hidden: number,
): Float64Array {
  const tokens = patches + 1;
  const out = new Float64Array(batch * tokens * hidden);
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < tokens; t++)
      for (let d = 0; d < hidden; d++) {
        const value = t === 0 ? classEmbedding[d] : patchFeatures[(b * patches + t - 1) * hidden + d];
        out[(b * tokens + t) * hidden + d] = value + positionEmbedding[t * hidden + d];
      }
  return out;
}

export function textEmbeddings(
  ids: ArrayLike<number>,
  tokenEmbedding: ArrayLike<number>,
  positionEmbedding: ArrayLike<number>,
  batch: number,
  seqLen: number,
  hidden: number,
): Float64Array {
  const out = new Float64Array(batch * seqLen * hidden);
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < seqLen; t++)
      for (let d = 0; d < hidden; d++) {
        const id = ids[b * seqLen + t];
        out[(b * seqLen + t) * hidden + d] = tokenEmbedding[id * hidden + d] + positionEmbedding[t * hidden + d];
      }
  return out;
}

export function gatherRows(
  x: ArrayLike<number>,
  rows: ArrayLike<number>,
  batch: number,
  seqLen: number,
  hidden: number,
): Float64Array {
  const out = new Float64Array(batch * hidden);
  for (let b = 0; b < batch; b++)
    for (let d = 0; d < hidden; d++) out[b * hidden + d] = x[(b * seqLen + rows[b]) * hidden + d];
  return out;
}
