// Dropout on an adapter's input x, shared by block_lora.wgsl and matmul.wgsl through `#include`: the
// mask is a hash of (seed, flat index of the element of x), regenerated wherever it is needed, never
// stored. test/reference/block_lora.ts has the same hash for the masks the tests expect.
//
// The including shader's Params struct `p` supplies drop_threshold (an element is dropped when its
// hash < drop_threshold; 0: no dropout), keep_scale (1 / (1 - p)) and seed.

// lowbias32 (C. Wellons): a cheap integer mixer with good avalanche.
fn mix32(value: u32) -> u32 {
  var h = value;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// Entry i of a batched kernel (q, k and v of a layer, one adapter each) masks with seed + i * PLANE_SEED_STEP
// (wrapping), so that each adapter keeps a mask of its own; src/kernels/dropout.ts's planeSeed is the same.
const PLANE_SEED_STEP = 0x9e3779b9u;

// 0 or 1 / (1 - p) for element `index` of x: counter-based, so forward and backward agree.
fn dropout_factor(index: u32) -> f32 {
  return plane_dropout_factor(index, 0u);
}

// dropout_factor for entry `plane` of a batched kernel.
fn plane_dropout_factor(index: u32, plane: u32) -> f32 {
  if (p.drop_threshold == 0u) { return 1.0; }
  return select(0.0, p.keep_scale, mix32(mix32(index) ^ (p.seed + plane * PLANE_SEED_STEP)) >= p.drop_threshold);
}
