// Plain float64 references for shaders/matmul.wgsl.

export interface ReferenceMatmulOptions {
  m: number;
  n: number;
  k: number;
  batch?: number;
  transposeA?: boolean;
  transposeB?: boolean;
  alpha?: number;
  bias?: ArrayLike<number> | null;
  broadcastB?: boolean;
  /** Added to the product (the old contents of out, for accumulate). */
  initial?: ArrayLike<number> | null;
}

/** out[batch, m, n] = alpha * op(a) op(b) + bias + initial. */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, options: ReferenceMatmulOptions): Float64Array {
  const {
    m,
    n,
    k,
    batch = 1,
    transposeA = false,
    transposeB = false,
    alpha = 1,
    bias = null,
    broadcastB = false,
    initial = null,
  } = options;
  const out = new Float64Array(batch * m * n);
  for (let e = 0; e < batch; e++) {
    const aBase = e * m * k;
    const bBase = broadcastB ? 0 : e * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let l = 0; l < k; l++) {
          const aValue = transposeA ? a[aBase + l * m + i] : a[aBase + i * k + l];
          const bValue = transposeB ? b[bBase + j * k + l] : b[bBase + l * n + j];
          sum += aValue * bValue;
        }
        const at = e * m * n + i * n + j;
        out[at] = alpha * sum + (bias ? bias[j] : 0) + (initial ? initial[at] : 0);
      }
    }
  }
  return out;
}

/** y[rows, out] = x[rows, in] W[out, in]^T + bias[out] */
export function linearForward(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  outFeatures: number,
  inFeatures: number,
): Float64Array {
  const rows = x.length / inFeatures;
  return matmul(x, weight, { m: rows, n: outFeatures, k: inFeatures, transposeB: true, bias });
}

/** dx[rows, in] = dy[rows, out] W[out, in] */
export function linearBackwardInput(
  dy: ArrayLike<number>,
  weight: ArrayLike<number>,
  outFeatures: number,
  inFeatures: number,
): Float64Array {
  const rows = dy.length / outFeatures;
  return matmul(dy, weight, { m: rows, n: inFeatures, k: outFeatures });
}

/** dW[out, in] = dy[rows, out]^T x[rows, in] */
export function linearBackwardWeight(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  outFeatures: number,
  inFeatures: number,
): Float64Array {
  const rows = dy.length / outFeatures;
  return matmul(dy, x, { m: outFeatures, n: inFeatures, k: rows, transposeA: true });
}

/** dBias[out] = column sums of dy[rows, out] */
export function columnSums(dy: ArrayLike<number>, columns: number): Float64Array {
  const sums = new Float64Array(columns);
  for (let i = 0; i < dy.length; i++) sums[i % columns] += dy[i];
  return sums;
}
