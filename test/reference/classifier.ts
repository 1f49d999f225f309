// Plain float64 references for shaders/classifier.wgsl. Matrices are row-major; `width` is the
// feature dimension D, `classes` the logit row width.

const MIN_NORM = 1e-12;

export function l2Normalize(x: ArrayLike<number>, width: number): { out: Float64Array; norms: Float64Array } {
  const rows = x.length / width;
  const out = new Float64Array(x.length);
  const norms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let squares = 0;
    for (let d = 0; d < width; d++) squares += x[r * width + d] ** 2;
    norms[r] = Math.max(Math.sqrt(squares), MIN_NORM);
    for (let d = 0; d < width; d++) out[r * width + d] = x[r * width + d] / norms[r];
  }
  return { out, norms };
}

/** Gradient of sum(l2Normalize(x) * dout) with respect to x. */
export function l2NormalizeBackward(dout: ArrayLike<number>, x: ArrayLike<number>, width: number): Float64Array {
  const { out: y, norms } = l2Normalize(x, width);
  const dx = new Float64Array(x.length);
  for (let r = 0; r < norms.length; r++) {
    let doutDotY = 0;
    for (let d = 0; d < width; d++) doutDotY += dout[r * width + d] * y[r * width + d];
    for (let d = 0; d < width; d++) dx[r * width + d] = (dout[r * width + d] - y[r * width + d] * doutDotY) / norms[r];
  }
  return dx;
}

/** logits[b, c] = scale * sum_d image[b, d] * text[c, d] */
export function cosineLogits(
  image: ArrayLike<number>,
  text: ArrayLike<number>,
  width: number,
  scale: number,
): Float64Array {
  const batch = image.length / width;
  const classes = text.length / width;
  const logits = new Float64Array(batch * classes);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < classes; c++) {
      let sum = 0;
      for (let d = 0; d < width; d++) sum += image[b * width + d] * text[c * width + d];
      logits[b * classes + c] = scale * sum;
    }
  }
  return logits;
}

/** Gradients of sum(cosineLogits(image, text) * dLogits) with respect to image and text. */
export function cosineLogitsBackward(
  dLogits: ArrayLike<number>,
  image: ArrayLike<number>,
  text: ArrayLike<number>,
  width: number,
  scale: number,
): { dImage: Float64Array; dText: Float64Array } {
  const batch = image.length / width;
  const classes = text.length / width;
  const dImage = new Float64Array(image.length);
  const dText = new Float64Array(text.length);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < classes; c++) {
      const g = scale * dLogits[b * classes + c];
      for (let d = 0; d < width; d++) {
        dImage[b * width + d] += g * text[c * width + d];
        dText[c * width + d] += g * image[b * width + d];
      }
    }
  }
  return { dImage, dText };
}

/** losses[b] = logsumexp(logits[b]) - logits[b, labels[b]]; probs = softmax(logits) row by row. */
export function softmaxCrossEntropy(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): { losses: Float64Array; probs: Float64Array } {
  const rows = logits.length / classes;
  const losses = new Float64Array(rows);
  const probs = new Float64Array(logits.length);
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: classes }, (_, c) => logits[r * classes + c]);
    const max = Math.max(...row);
    const expSum = row.reduce((sum, v) => sum + Math.exp(v - max), 0);
    row.forEach((v, c) => (probs[r * classes + c] = Math.exp(v - max) / expSum));
    losses[r] = Math.log(expSum) + max - row[labels[r]];
  }
  return { losses, probs };
}

/** Gradient of lossScale * sum(losses) with respect to the logits. */
export function softmaxCrossEntropyBackward(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
  lossScale: number,
): Float64Array {
  return Float64Array.from(
    probs,
    (p, i) => (p - (i % classes === labels[Math.floor(i / classes)] ? 1 : 0)) * lossScale,
  );
}
