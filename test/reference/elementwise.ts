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
