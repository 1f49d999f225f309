// Central finite differences of a scalar function, in float64: the independent check of every
// backward pass. Backward kernels are compared with d/dx of L(x) = sum(forward(x) * upstream).

export function centralDifferenceGradient(
  loss: (x: Float64Array) => number,
  x: ArrayLike<number>,
  epsilon = 1e-6,
): Float64Array {
  const point = Float64Array.from(x);
  const gradient = new Float64Array(point.length);
  for (let i = 0; i < point.length; i++) {
    const saved = point[i];
    point[i] = saved + epsilon;
    const plus = loss(point);
    point[i] = saved - epsilon;
    const minus = loss(point);
    point[i] = saved;
    gradient[i] = (plus - minus) / (2 * epsilon);
  }
  return gradient;
}

/** sum(values * weights): turns a tensor-valued forward into the scalar loss the gradients refer to. */
export function dot(values: ArrayLike<number>, weights: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * weights[i];
  return sum;
}
