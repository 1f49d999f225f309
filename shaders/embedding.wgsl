// Embeddings and pooling: patch extraction for the patch convolution, CLIP's vision and text input
// embeddings, and the row gather that pools one token per sequence (forward and backward).

struct Params {
  batch: u32,
  length: u32,      // tokens per sequence T, or patches per image N
  width: u32,       // hidden size D, or 3*P*P for extract_patches
  vocab: u32,       // text_embeddings_forward only
  patch_size: u32,  // extract_patches only
  image_size: u32,  // extract_patches only
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<f32>;
@group(0) @binding(2) var<storage, read> patch_features: array<f32>;
@group(0) @binding(3) var<storage, read> class_embedding: array<f32>;
@group(0) @binding(4) var<storage, read> token_ids: array<f32>;
@group(0) @binding(5) var<storage, read> token_embedding: array<f32>;
@group(0) @binding(6) var<storage, read> position_embedding: array<f32>;
@group(0) @binding(7) var<storage, read> x: array<f32>;
@group(0) @binding(8) var<storage, read> pooled_rows: array<f32>;
@group(0) @binding(9) var<storage, read> dout: array<f32>;
@group(0) @binding(10) var<storage, read_write> out: array<f32>;
@group(0) @binding(11) var<storage, read_write> dx: array<f32>;
// The token table in half precision (F16_TOKEN_EMBEDDING): two halves per u32. The other view of the
// table is bound to whatever the table is not (never read).
@group(0) @binding(12) var<storage, read> token_embedding_half: array<u32>;

override F16_TOKEN_EMBEDDING: bool = false;

const WORKGROUP_SIZE = 256u;

// #include "grid.wgsl"

// WGSL has no NaN literal and rejects NaN in constant expressions, so bitcast a quiet NaN at run time.
fn quiet_nan() -> f32 {
  let bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

// An index stored as f32 is usable if it is a number in [0, limit). Checked in f32 so that NaN and
// negative values, which u32() would turn into a valid row, are caught too.
fn is_valid_index(value: f32, limit: u32) -> bool {
  return value >= 0.0 && value < f32(limit);
}

// patches[(b, pr, pc), (c, ky, kx)] = pixels[b, c, pr*P + ky, pc*P + kx]; one thread per patch value.
@compute @workgroup_size(WORKGROUP_SIZE)
fn extract_patches(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                   @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.batch * p.length * p.width) { return; }
  let patches_per_side = p.image_size / p.patch_size;
  let column = i % p.width;
  let row = i / p.width;
  let b = row / p.length;
  let patch_index = row % p.length;
  let channel = column / (p.patch_size * p.patch_size);
  let y = (patch_index / patches_per_side) * p.patch_size + (column / p.patch_size) % p.patch_size;
  let x = (patch_index % patches_per_side) * p.patch_size + column % p.patch_size;
  out[i] = pixels[((b * 3u + channel) * p.image_size + y) * p.image_size + x];
}

// out[b, 0] = class + pos[0]; out[b, 1 + n] = patch_features[b*N + n] + pos[1 + n].
@compute @workgroup_size(WORKGROUP_SIZE)
fn vision_embeddings_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                             @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  let tokens = p.length + 1u;
  if (i >= p.batch * tokens * p.width) { return; }
  let d = i % p.width;
  let token = (i / p.width) % tokens;
  let b = i / (tokens * p.width);
  var value: f32;
  if (token == 0u) {
    value = class_embedding[d];
  } else {
    value = patch_features[(b * p.length + token - 1u) * p.width + d];
  }
  out[i] = value + position_embedding[token * p.width + d];
}

fn token_embedding_at(i: u32) -> f32 {
  if (F16_TOKEN_EMBEDDING) { return unpack2x16float(token_embedding_half[i / 2u])[i % 2u]; }
  return token_embedding[i];
}

// out[b, t] = token_embedding[ids[b, t]] + pos[t]. An id outside [0, vocab) gives a NaN row: a
// shader cannot throw, and a NaN loss is easier to trace than a silently wrong embedding.
@compute @workgroup_size(WORKGROUP_SIZE)
fn text_embeddings_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                           @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.batch * p.length * p.width) { return; }
  let d = i % p.width;
  let sequence_position = i / p.width;
  let id = token_ids[sequence_position];
  if (!is_valid_index(id, p.vocab)) {
    out[i] = quiet_nan();
    return;
  }
  let t = sequence_position % p.length;
  out[i] = token_embedding_at(u32(id) * p.width + d) + position_embedding[t * p.width + d];
}

// out[b] = x[b, rows[b]]; a row outside [0, T) gives NaN, as for token ids.
@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_rows_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                       @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.batch * p.width) { return; }
  let b = i / p.width;
  let row = pooled_rows[b];
  if (!is_valid_index(row, p.length)) {
    out[i] = quiet_nan();
    return;
  }
  out[i] = x[(b * p.length + u32(row)) * p.width + i % p.width];
}

// dx[b, rows[b]] += dout[b]. Sequences own disjoint rows of dx, so the read-modify-write needs no
// atomics. An invalid row writes nothing: its forward was already NaN.
@compute @workgroup_size(WORKGROUP_SIZE)
fn gather_rows_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                        @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.batch * p.width) { return; }
  let b = i / p.width;
  let row = pooled_rows[b];
  if (!is_valid_index(row, p.length)) { return; }
  let destination = (b * p.length + u32(row)) * p.width + i % p.width;
  dx[destination] = dx[destination] + dout[i];
}
