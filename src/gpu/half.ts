// IEEE 754 half precision (binary16) as the GPU's unpack2x16float reads it: two per u32, the element
// at the lower index in the low 16 bits. Frozen weights stored this way take half the memory; kernels
// widen them to f32 and compute in f32.

/** The largest finite half: 65504. Larger magnitudes would round to infinity. */
export const HALF_MAX = 65504;

/** A value half precision cannot hold (it would round to infinity), and where it is. */
export class HalfRangeError extends RangeError {
  override name = 'HalfRangeError';

  constructor(
    readonly tensor: string,
    readonly index: number,
    readonly value: number,
  ) {
    super(
      `${tensor}: value ${value} at index ${index} is beyond half precision's range (±${HALF_MAX}); store it in f32`,
    );
  }
}

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** The half nearest to `value` (ties to even), as its 16 bits; NaN stays NaN, overflow gives infinity. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const bits = f32Bits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // infinity, or a quiet NaN
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00; // too large: infinity
  if (halfExponent <= 0) {
    // A subnormal half (or zero): the implicit 1 joins the mantissa, shifted right by 1 - halfExponent more.
    if (halfExponent < -10) return sign; // below half the smallest subnormal: rounds to zero
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    return sign | roundShifted(full, shift);
  }
  // A normal half; rounding may carry into the exponent, which is the right result (up to infinity).
  return sign | ((halfExponent << 10) + roundShifted(mantissa, 13));
}

/** value >> shift, rounded to nearest with ties to even. */
function roundShifted(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** The value of a half's 16 bits. */
export function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Values as halves, two per u32 (an odd count ends with a zero half). */
export function packHalves(values: Float32Array): Uint32Array {
  const packed = new Uint32Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) packed[i >>> 1] |= toHalfBits(values[i]) << (16 * (i & 1));
  return packed;
}

/** The first `count` halves of packed u32s, widened to f32. */
export function unpackHalves(packed: Uint32Array, count: number): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = fromHalfBits((packed[i >>> 1] >>> (16 * (i & 1))) & 0xffff);
  return values;
}
