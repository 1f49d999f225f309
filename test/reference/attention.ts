// Plain float64 reference for shaders/attention.wgsl.

import type { AttentionShape } from '../../src/kernels/attention';

/** Offset of (batch, position, head, 0) in a [batch, seqLen, heads * headDim] array. */
function tokenOffset(
  { seqLen, heads, headDim }: AttentionShape,
  batch: number,
  position: number,
  head: number,
): number {
  return ((batch * seqLen + position) * heads + head) * headDim;
}

/** Offset of (batch, head, query, 0) in a [batch, heads, seqLen, seqLen] array. */
function rowOffset({ seqLen, heads }: AttentionShape, batch: number, head: number, query: number): number {
  return ((batch * heads + head) * seqLen + query) * seqLen;
}

function visibleKeys(shape: AttentionShape, query: number): number {
  return shape.causal ? query + 1 : shape.seqLen;
}

function dotAt(a: ArrayLike<number>, aStart: number, b: ArrayLike<number>, bStart: number, length: number): number {
  let sum = 0;
  for (let d = 0; d < length; d++) sum += a[aStart + d] * b[bStart + d];
  return sum;
}

export function attentionForward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  shape: AttentionShape,
): { out: Float64Array; probs: Float64Array } {
  const { batch, seqLen, heads, headDim, scale } = shape;
  const probs = new Float64Array(batch * heads * seqLen * seqLen);
  const out = new Float64Array(batch * seqLen * heads * headDim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seqLen; i++) {
        const row = rowOffset(shape, b, h, i);
        const query = tokenOffset(shape, b, i, h);
        const keyEnd = visibleKeys(shape, i);
        let max = -Infinity;
        for (let j = 0; j < keyEnd; j++) {
          probs[row + j] = scale * dotAt(q, query, k, tokenOffset(shape, b, j, h), headDim);
          max = Math.max(max, probs[row + j]);
        }
        let total = 0;
        for (let j = 0; j < keyEnd; j++) {
          probs[row + j] = Math.exp(probs[row + j] - max);
          total += probs[row + j];
        }
        for (let j = 0; j < keyEnd; j++) {
          probs[row + j] /= total;
          const value = tokenOffset(shape, b, j, h);
          for (let d = 0; d < headDim; d++) out[query + d] += probs[row + j] * v[value + d];
        }
      }
    }
  }
  return { out, probs };
}

/** Gradients of sum(out * dout) with respect to q, k and v. */
export function attentionBackward(
  dout: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  shape: AttentionShape,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { batch, seqLen, heads, headDim, scale } = shape;
  const { probs } = attentionForward(q, k, v, shape);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dprobs = new Float64Array(seqLen);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seqLen; i++) {
        const row = rowOffset(shape, b, h, i);
        const query = tokenOffset(shape, b, i, h);
        const keyEnd = visibleKeys(shape, i);
        let expectedDprobs = 0;
        for (let j = 0; j < keyEnd; j++) {
          dprobs[j] = dotAt(dout, query, v, tokenOffset(shape, b, j, h), headDim);
          expectedDprobs += probs[row + j] * dprobs[j];
        }
        for (let j = 0; j < keyEnd; j++) {
          const p = probs[row + j];
          // d loss / d(q_i · k_j): softmax backward, then the scaling.
          const dqk = scale * p * (dprobs[j] - expectedDprobs);
          const key = tokenOffset(shape, b, j, h);
          for (let d = 0; d < headDim; d++) {
            dq[query + d] += dqk * k[key + d];
            dk[key + d] += dqk * q[query + d];
            dv[key + d] += p * dout[query + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
