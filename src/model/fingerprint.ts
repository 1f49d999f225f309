// A fingerprint of a CLIP checkpoint, recorded in adapter files so that an adapter made for another
// base model is refused.

/**
 * The checkpoint tensors a base model's fingerprint covers, in the order to pass them to `fingerprintWeights`:
 * small (0.66 M values for ViT-B/32, hashed in tens of milliseconds), yet different in every released CLIP
 * and changed by any fine-tune of the projections.
 */
export const FINGERPRINT_TENSORS = ['logit_scale', 'text_projection.weight', 'visual_projection.weight'] as const;

/**
 * A cheap, stable fingerprint of some weights: 64-bit FNV-1a over each array's length and f32 bit patterns
 * (little-endian), e.g. "fnv1a64:cbf29ce484222325". The caller passes the decoded f32 values of
 * `FINGERPRINT_TENSORS`, in that order. The same checkpoint gives the same fingerprint in a browser and in
 * Node; a copy stored at another precision (F16) gives another fingerprint, and is refused like another base.
 */
export function fingerprintWeights(samples: readonly Float32Array[]): string {
  const state = { hi: 0xcbf29ce4, lo: 0x84222325 };
  for (const sample of samples) {
    fnv1a64Words(state, new Uint32Array([sample.length]));
    // The f32 bit patterns as integers: the same on hosts of either byte order.
    fnv1a64Words(state, new Uint32Array(sample.buffer, sample.byteOffset, sample.length));
  }
  return `fnv1a64:${state.hi.toString(16).padStart(8, '0')}${state.lo.toString(16).padStart(8, '0')}`;
}

/**
 * FNV-1a 64 over each word's four bytes, least significant first, with the state in two 32-bit halves. The
 * prime is 2^40 + 0x1b3, so h * prime = h * 0x1b3 + (low half << 40), all mod 2^64.
 */
function fnv1a64Words(state: { hi: number; lo: number }, words: Uint32Array): void {
  let { hi, lo } = state;
  for (const word of words) {
    for (let shift = 0; shift < 32; shift += 8) {
      lo = (lo ^ ((word >>> shift) & 0xff)) >>> 0;
      const low = lo * 0x1b3; // < 2^41: exact in a double
      hi = (Math.imul(hi, 0x1b3) + Math.floor(low / 0x100000000) + (lo << 8)) >>> 0;
      lo = low >>> 0;
    }
  }
  state.hi = hi;
  state.lo = lo;
}
