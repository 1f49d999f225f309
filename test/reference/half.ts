// Rounding to IEEE 754 half precision by arithmetic on doubles, written independently of src/gpu/half.ts
// (which works on bits): the half grid has 10 fraction bits, spacing 2^(e - 10) in [2^e, 2^(e + 1)),
// and 2^-24 below 2^-14 (subnormals); ties go to the even neighbour; past 65520 a value rounds to infinity.

export function roundToHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const magnitude = Math.abs(x);
  if (magnitude >= 65520) return Math.sign(x) * Number.POSITIVE_INFINITY;
  const exponent = Math.max(Math.floor(Math.log2(magnitude)), -14);
  const spacing = 2 ** (exponent - 10);
  const steps = magnitude / spacing; // exact: a power-of-two scaling
  let rounded = Math.floor(steps);
  const rest = steps - rounded;
  if (rest > 0.5 || (rest === 0.5 && rounded % 2 === 1)) rounded += 1;
  return Math.sign(x) * rounded * spacing;
}

/** Every value rounded to half precision, as the GPU holds f16-stored weights. */
export function roundedToHalf(values: ArrayLike<number>): Float32Array {
  return Float32Array.from(values, roundToHalf);
}

// Which checkpoint tensors half-precision storage rounds, written out rather than derived from the
// loader's rule, so that a tensor rounded by mistake, or one left in f32, shows: nn.Linear's weights
// (attention projections, MLP), the patch convolution, the output projections and the token table.
export const HALF_WEIGHTS =
  /^(?:(?:vision|text)_model\.encoder\.layers\.\d+\.(?:self_attn\.[qkvo]\w*_proj|mlp\.fc[12])|visual_projection|text_projection|vision_model\.embeddings\.patch_embedding|text_model\.embeddings\.token_embedding)\.weight$/;

/** A checkpoint's weights as the GPU holds them under half-precision storage. */
export function withHalfWeights(weights: ReadonlyMap<string, ArrayLike<number>>): Map<string, ArrayLike<number>> {
  return new Map(
    [...weights].map(([name, values]) => [name, HALF_WEIGHTS.test(name) ? roundedToHalf(values) : values]),
  );
}
