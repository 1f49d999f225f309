// Plain float64 references for shaders/elementwise.wgsl.

export function quickGelu(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => v / (1 + Math.exp(-1.702 * v)));
}

export function quickGeluBackward(x: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const s = 1 / (1 + Math.exp(-1.702 * v));
    return dout[i] * (s + 1.702 * v * s * (1 - s));
  });
}

/**
 * erfc(z) to about 1e-15 relative, by other means than the shader's fit: the Maclaurin series of erf
 * below |z| = 2 (terms up to e^4, so at most ~1e-15 lost to cancellation), and the continued
 * fraction erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...)))) above.
 */
export function erfc(z: number): number {
  if (z < 0) return 2 - erfc(-z);
  if (z < 2) {
    let term = z;
    let sum = z;
    for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  let fraction = z;
  for (let k = 200; k >= 1; k--) fraction = z + k / 2 / fraction;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / fraction;
}

/** x Phi(x), transformers' "gelu". */
export function gelu(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => 0.5 * v * erfc(-v / Math.SQRT2));
}

export function geluBackward(x: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  return Float64Array.from(
    x,
    (v, i) => dout[i] * (0.5 * erfc(-v / Math.SQRT2) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI)),
  );
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), transformers' "gelu_new" and "gelu_pytorch_tanh". */
export function geluTanh(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v ** 3))));
}

export function geluTanhBackward(x: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const t = Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v ** 3));
    return dout[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * v * v));
  });
}

/** Forward and backward by the shader's names (src/kernels/elementwise.ts's Activation). */
export const ACTIVATIONS = {
  quick_gelu: { forward: quickGelu, backward: quickGeluBackward },
  gelu: { forward: gelu, backward: geluBackward },
  gelu_tanh: { forward: geluTanh, backward: geluTanhBackward },
} as const;
