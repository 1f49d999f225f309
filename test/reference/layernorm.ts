// Plain float64 references for shaders/layernorm.wgsl (PyTorch nn.LayerNorm: biased variance).

export interface LayerNormResult {
  out: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

export function layerNorm(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  eps: number,
): LayerNormResult {
  const columns = weight.length;
  const rows = x.length / columns;
  const out = new Float64Array(x.length);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const start = r * columns;
    let sum = 0;
    for (let c = 0; c < columns; c++) sum += x[start + c];
    mean[r] = sum / columns;
    let squaredDeviations = 0;
    for (let c = 0; c < columns; c++) squaredDeviations += (x[start + c] - mean[r]) ** 2;
    rstd[r] = 1 / Math.sqrt(squaredDeviations / columns + eps);
    for (let c = 0; c < columns; c++) out[start + c] = (x[start + c] - mean[r]) * rstd[r] * weight[c] + bias[c];
  }
  return { out, mean, rstd };
}

export interface LayerNormGradients {
  dx: Float64Array;
  dWeight: Float64Array;
  dBias: Float64Array;
}

/** Gradients of sum(layerNorm(x) * dout) with respect to x, weight and bias. */
export function layerNormBackward(
  dout: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  eps: number,
): LayerNormGradients {
  const columns = weight.length;
  const rows = x.length / columns;
  const { mean, rstd } = layerNorm(x, weight, new Float64Array(columns), eps);
  const dx = new Float64Array(x.length);
  const dWeight = new Float64Array(columns);
  const dBias = new Float64Array(columns);
  for (let r = 0; r < rows; r++) {
    const start = r * columns;
    const xhat = (c: number) => (x[start + c] - mean[r]) * rstd[r];
    let meanG = 0;
    let meanGXhat = 0;
    for (let c = 0; c < columns; c++) {
      const g = dout[start + c] * weight[c];
      meanG += g / columns;
      meanGXhat += (g * xhat(c)) / columns;
      dWeight[c] += dout[start + c] * xhat(c);
      dBias[c] += dout[start + c];
    }
    for (let c = 0; c < columns; c++) {
      dx[start + c] = rstd[r] * (dout[start + c] * weight[c] - meanG - xhat(c) * meanGXhat);
    }
  }
  return { dx, dWeight, dBias };
}
