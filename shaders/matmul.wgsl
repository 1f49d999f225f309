// Matrix products out = alpha * op(a) op(b) (+ bias) (+ low-rank term) (+ out), batched, op an optional
// transpose: the forward and both backward products of nn.Linear and of attention, and the bias
// gradient (column sums).
//
// The low-rank term is a Block-LoRA adapter's share of a linear layer, added as the frozen product is
// stored instead of by a pass of its own: scale * drop(thin[m, :] . thin_weight(n, :)), with thin [m, b]
// (b = r / n, at most a few columns) and thin_weight read through strides. In the forward it is
// s * u (B_1 + ... + B_n)^T added to x W0^T + b; in the input gradient, drop(du A_s) added to dy W0.
// Batched, each entry has its own (q, k and v of a layer in one dispatch: a shared, b, bias, out and
// the low-rank operands strided). With k planes, out = sum_i a_i b_i (+ sum_i low-rank term i): the
// input gradient of q, k and v together, dy_q W_q + dy_k W_k + dy_v W_v. b (the frozen weight in the
// linear layer's products) may be stored in half precision. The products are computed in `arithmetic`:
// f32, or in the f16 variant (shaders.ts; the 'f16' precision) half precision, 4 products per value
// of out summed in f16 per step of k, and those partial sums added up in f32. The low-rank term,
// bias and epilogue are f32 in both.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  a_batch_stride: u32,      // 0 when every batch entry shares one a (q, k and v of one input)
  b_batch_stride: u32,      // 0 when every batch entry shares one b
  out_batch_stride: u32,    // where batch entry i of out starts: i * out_batch_stride (m * n when contiguous)
  bias_batch_stride: u32,   // 0 when every batch entry shares one bias
  k_planes: u32,            // the product sums this many planes of a and b (entry e * k_planes + i holds batch entry e's plane i); 1: a plain product
  first_workgroup_x: u32,   // a grid past 65,535 workgroups in a dimension runs as several dispatches
  first_workgroup_y: u32,
  first_workgroup_z: u32,
  alpha: f32,
  accumulate: u32,          // 1: out += product; 0: out = product
  low_rank: u32,            // b, the columns of thin; 0: no low-rank term
  thin_batch_stride: u32,   // batch entry i of the low-rank term reads thin from i * thin_batch_stride
  thin_weight_batch_stride: u32,  // and thin_weight from i * thin_weight_batch_stride
  thin_weight_rank_stride: u32,   // thin_weight(col, j) is at col * thin_weight_width_stride + j * thin_weight_rank_stride
  thin_weight_width_stride: u32,
  low_rank_scale: f32,
  drop_threshold: u32,      // dropout on the low-rank term, by out's flat index (dropout.wgsl)
  keep_scale: f32,
  seed: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// a and b are each bound twice, as scalars and as vec4s (one buffer, two views): an operand whose
// contiguous dimension is a multiple of 4 is read 4 values per load.
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> a4: array<vec4f>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> b4: array<vec4f>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
// The low-rank term's operands; without one, a is bound here (never read).
@group(0) @binding(7) var<storage, read> thin: array<f32>;
@group(0) @binding(8) var<storage, read> thin_weight: array<f32>;
// b in half precision (frozen weights, F16_B): two halves per u32, four per vec2u, widened to f32 as
// they are read. The other pair of views of b is bound to whatever b is not (never read).
@group(0) @binding(9) var<storage, read> b_half: array<u32>;
@group(0) @binding(10) var<storage, read> b_half4: array<vec2u>;

override TRANSPOSE_A: bool = false;  // a stored [k, m] instead of [m, k]
override TRANSPOSE_B: bool = false;  // b stored [n, k] instead of [k, n]
override VEC4_A: bool = false;       // a's contiguous dimension (m if transposed, else k) is a multiple of 4
override VEC4_B: bool = false;       // b's contiguous dimension (k if transposed, else n) is a multiple of 4
override F16_B: bool = false;        // b is read from b_half / b_half4
// Every thread computes one 4x4 block of out; a workgroup covers (4 WORKGROUP_Y) x (4 WORKGROUP_X).
override WORKGROUP_X: u32 = 8u;      // threads along n
override WORKGROUP_Y: u32 = 8u;      // threads along m
override K_BLOCKS: u32 = 4u;         // matmul_shared: k-slice held in workgroup memory, in blocks of 4

const LANES = vec4u(0u, 1u, 2u, 3u);

alias arithmetic = f32;

// ---- 4x4 blocks of the operands ---------------------------------------------------------------
// Blocks come transposed, so that `b_block * a_block` is the transpose of op(a) op(b) and its column
// i is row i of the out block. Rows of op(a) past m and columns of op(b) past n read the last valid
// one (their results are never stored); k past the end reads zero, so a partial last step adds nothing.
//
// A thread walks k in steps of 4: its block of a at step k0 is read at four indices `at` (into a4
// with vec4 loads, else into a), and the next step's at the same indices plus a_step().

fn clamped_rows(row0: u32) -> vec4u {
  return min(vec4u(row0) + LANES, vec4u(p.m - 1u));
}

fn clamped_cols(col0: u32) -> vec4u {
  return min(vec4u(col0) + LANES, vec4u(p.n - 1u));
}

// Distance in a between consecutive k of one row of op(a) (and, as it happens, in a4 between the vec4s
// of consecutive steps of 4 k).
fn a_k_stride() -> u32 {
  return select(1u, p.m, TRANSPOSE_A);
}

fn a_step() -> u32 {
  return select(4u * a_k_stride(), a_k_stride(), VEC4_A);
}

fn a_start(base: u32, row0: u32, k0: u32) -> vec4u {
  if (VEC4_A && TRANSPOSE_A) {
    // a is [k, m]: one vec4 holds 4 rows at one k; at[i] is at k0 + i. m is a multiple of 4: the last 4 rows are whole.
    return (vec4u(base + k0 * p.m + min(row0, p.m - 4u)) + LANES * p.m) / 4u;
  }
  let rows = clamped_rows(row0);
  if (VEC4_A) { return (vec4u(base + k0) + rows * p.k) / 4u; }  // a is [m, k]: one vec4 holds 4 k of one row
  if (TRANSPOSE_A) { return vec4u(base + k0 * p.m) + rows; }
  return vec4u(base + k0) + rows * p.k;
}

// Column i: row row0 + i of op(a) at k0..k0+3 (whole steps only; see a_block_tail).
fn a_block(at: vec4u) -> mat4x4f {
  if (VEC4_A) {
    let loaded = mat4x4f(a4[at.x], a4[at.y], a4[at.z], a4[at.w]);
    if (TRANSPOSE_A) { return transpose(loaded); }
    return loaded;
  }
  let s = a_k_stride();
  return mat4x4f(vec4f(a[at.x], a[at.x + s], a[at.x + 2u * s], a[at.x + 3u * s]),
                 vec4f(a[at.y], a[at.y + s], a[at.y + 2u * s], a[at.y + 3u * s]),
                 vec4f(a[at.z], a[at.z + s], a[at.z + 2u * s], a[at.z + 3u * s]),
                 vec4f(a[at.w], a[at.w + s], a[at.w + 2u * s], a[at.w + 3u * s]));
}

// Distance in b between consecutive k of one column of op(b) (and in b4 between steps of 4 k).
fn b_k_stride() -> u32 {
  return select(p.n, 1u, TRANSPOSE_B);
}

fn b_step() -> u32 {
  return select(4u * b_k_stride(), b_k_stride(), VEC4_B);
}

fn b_start(base: u32, k0: u32, col0: u32) -> vec4u {
  if (VEC4_B && !TRANSPOSE_B) {
    // b is [k, n]: one vec4 holds 4 columns at one k; at[j] is at k0 + j. n is a multiple of 4.
    return (vec4u(base + k0 * p.n + min(col0, p.n - 4u)) + LANES * p.n) / 4u;
  }
  let cols = clamped_cols(col0);
  if (VEC4_B) { return (vec4u(base + k0) + cols * p.k) / 4u; }  // b is [n, k]: one vec4 holds 4 k of one column
  if (TRANSPOSE_B) { return vec4u(base + k0) + cols * p.k; }
  return vec4u(base + k0 * p.n) + cols;
}

// Element i of b, and vec4 i of b (elements 4i..4i+3), in either precision.
fn b_at(i: u32) -> f32 {
  if (F16_B) { return unpack2x16float(b_half[i / 2u])[i % 2u]; }
  return b[i];
}

fn b4_at(i: u32) -> vec4f {
  if (F16_B) {
    let words = b_half4[i];
    return vec4f(unpack2x16float(words.x), unpack2x16float(words.y));
  }
  return b4[i];
}

// Column j: row k0 + j of op(b) at col0..col0+3 (whole steps only; see b_block_tail).
fn b_block(at: vec4u) -> mat4x4f {
  if (VEC4_B) {
    let loaded = mat4x4f(b4_at(at.x), b4_at(at.y), b4_at(at.z), b4_at(at.w));
    if (TRANSPOSE_B) { return transpose(loaded); }
    return loaded;
  }
  // at[j] starts column col0 + j; read 4 k of each, then transpose.
  let s = b_k_stride();
  return transpose(mat4x4f(vec4f(b_at(at.x), b_at(at.x + s), b_at(at.x + 2u * s), b_at(at.x + 3u * s)),
                           vec4f(b_at(at.y), b_at(at.y + s), b_at(at.y + 2u * s), b_at(at.y + 3u * s)),
                           vec4f(b_at(at.z), b_at(at.z + s), b_at(at.z + 2u * s), b_at(at.z + 3u * s)),
                           vec4f(b_at(at.w), b_at(at.w + s), b_at(at.w + 2u * s), b_at(at.w + 3u * s))));
}

fn a_value(base: u32, row: u32, kk: u32) -> f32 {
  if (TRANSPOSE_A) { return a[base + kk * p.m + row]; }
  return a[base + row * p.k + kk];
}

fn b_value(base: u32, kk: u32, col: u32) -> f32 {
  if (TRANSPOSE_B) { return b_at(base + col * p.k + kk); }
  return b_at(base + kk * p.n + col);
}

// a_block for the last, partial step of k: values past k are zero.
fn a_block_tail(base: u32, row0: u32, k0: u32) -> mat4x4f {
  let rows = clamped_rows(row0);
  var block = mat4x4f();
  for (var kk = 0u; kk < 4u && k0 + kk < p.k; kk++) {
    block[0][kk] = a_value(base, rows.x, k0 + kk);
    block[1][kk] = a_value(base, rows.y, k0 + kk);
    block[2][kk] = a_value(base, rows.z, k0 + kk);
    block[3][kk] = a_value(base, rows.w, k0 + kk);
  }
  return block;
}

// b_block for the last, partial step of k: rows past k are zero.
fn b_block_tail(base: u32, k0: u32, col0: u32) -> mat4x4f {
  let cols = clamped_cols(col0);
  var block = mat4x4f();
  for (var kk = 0u; kk < 4u && k0 + kk < p.k; kk++) {
    block[kk] = vec4f(b_value(base, k0 + kk, cols.x), b_value(base, k0 + kk, cols.y),
                      b_value(base, k0 + kk, cols.z), b_value(base, k0 + kk, cols.w));
  }
  return block;
}

fn a_base(batch: u32) -> u32 {
  return batch * p.a_batch_stride;
}

fn b_base(batch: u32) -> u32 {
  return batch * p.b_batch_stride;
}

// ---- epilogue ---------------------------------------------------------------------------------

fn bias_row(batch: u32, col0: u32) -> vec4f {
  let cols = vec4u(batch * p.bias_batch_stride) + clamped_cols(col0);
  return vec4f(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]);
}

// #include "dropout.wgsl"

fn thin_weight_at(base: u32, col: u32, j: u32) -> f32 {
  return thin_weight[base + col * p.thin_weight_width_stride + j * p.thin_weight_rank_stride];
}

// The low-rank term at row `row` of batch entry `batch`, columns col0..col0+3 (clamped like bias_row:
// only stored ones count): the sum over the entry's k planes, each with its own operands and mask;
// dropout by the flat index within the batch entry.
fn low_rank_row(batch: u32, row: u32, col0: u32) -> vec4f {
  let cols = clamped_cols(col0);
  let at = row * p.n + cols;
  var total = vec4f(0.0);
  for (var plane = 0u; plane < p.k_planes; plane++) {
    let entry = batch * p.k_planes + plane;
    let w = entry * p.thin_weight_batch_stride;
    let thin_row = entry * p.thin_batch_stride + row * p.low_rank;
    var sum = vec4f(0.0);
    for (var j = 0u; j < p.low_rank; j++) {
      let weights = vec4f(thin_weight_at(w, cols.x, j), thin_weight_at(w, cols.y, j), thin_weight_at(w, cols.z, j), thin_weight_at(w, cols.w, j));
      sum += thin[thin_row + j] * weights;
    }
    total += sum * vec4f(plane_dropout_factor(at.x, entry), plane_dropout_factor(at.y, entry),
                         plane_dropout_factor(at.z, entry), plane_dropout_factor(at.w, entry));
  }
  return p.low_rank_scale * total;
}

// Writes alpha * product + bias_values (+ the low-rank term) (+ out) for the part of the block inside
// out; column i of product_transposed is row row0 + i of the block.
fn store_block(product_transposed: mat4x4f, batch: u32, row0: u32, col0: u32, bias_values: vec4f) {
  let base = batch * p.out_batch_stride;
  for (var i = 0u; i < 4u && row0 + i < p.m; i++) {
    var values = p.alpha * product_transposed[i] + bias_values;
    if (p.low_rank != 0u) { values += low_rank_row(batch, row0 + i, col0); }
    let row_start = base + (row0 + i) * p.n + col0;
    for (var j = 0u; j < 4u && col0 + j < p.n; j++) {
      var value = values[j];
      if (p.accumulate != 0u) { value += out[row_start + j]; }
      out[row_start + j] = value;
    }
  }
}

// ---- direct kernel: every thread reads its operands straight from storage ----------------------

fn first_workgroup() -> vec3u {
  return vec3u(p.first_workgroup_x, p.first_workgroup_y, p.first_workgroup_z);
}

// One step of 4 k of a block (b_block * a_block, see above) in the arithmetic's precision, widened to
// be added to the f32 sums.
fn block_product(b_block: mat4x4f, a_block: mat4x4f) -> mat4x4f {
  return mat4x4f(mat4x4<arithmetic>(b_block) * mat4x4<arithmetic>(a_block));
}

fn direct_product(batch: u32, row0: u32, col0: u32) -> mat4x4f {
  let whole_steps_end = p.k & ~3u;
  let a_advance = a_step();
  let b_advance = b_step();
  var sum = mat4x4f();
  for (var entry = batch * p.k_planes; entry < (batch + 1u) * p.k_planes; entry++) {
    var a_at = a_start(a_base(entry), row0, 0u);
    var b_at = b_start(b_base(entry), 0u, col0);
    for (var k0 = 0u; k0 < whole_steps_end; k0 += 4u) {
      sum += block_product(b_block(b_at), a_block(a_at));
      a_at += a_advance;
      b_at += b_advance;
    }
    if (whole_steps_end < p.k) {
      sum += block_product(b_block_tail(b_base(entry), whole_steps_end, col0),
                           a_block_tail(a_base(entry), row0, whole_steps_end));
    }
  }
  return sum;
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_direct(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_id) local: vec3u) {
  let tile = first_workgroup() + workgroup;
  let row0 = (tile.y * WORKGROUP_Y + local.y) * 4u;
  let col0 = (tile.x * WORKGROUP_X + local.x) * 4u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  store_block(direct_product(tile.z, row0, col0), tile.z, row0, col0, vec4f(0.0));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_direct_bias(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_id) local: vec3u) {
  let tile = first_workgroup() + workgroup;
  let row0 = (tile.y * WORKGROUP_Y + local.y) * 4u;
  let col0 = (tile.x * WORKGROUP_X + local.x) * 4u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  store_block(direct_product(tile.z, row0, col0), tile.z, row0, col0, bias_row(tile.z, col0));
}

// ---- shared kernel: a workgroup stages k-slices of its rows of a and columns of b -------------
// Tiles hold the blocks' columns (vec4s) as [k block][column of the block][row or column block],
// so the threads of a row of the workgroup read consecutive vec4s of b_tile (no bank conflicts) and
// one vec4 of a_tile (a broadcast). Tiles hold the arithmetic's precision: converted once, as staged.

var<workgroup> a_tile: array<vec4<arithmetic>, 4u * K_BLOCKS * WORKGROUP_Y>;
var<workgroup> b_tile: array<vec4<arithmetic>, 4u * K_BLOCKS * WORKGROUP_X>;

// The product of this thread's block; tile.z is the batch entry.
fn shared_product(tile: vec3u, local: vec3u, local_index: u32) -> mat4x4f {
  var sum = mat4x4f();
  for (var entry = tile.z * p.k_planes; entry < (tile.z + 1u) * p.k_planes; entry++) {
    sum += shared_plane_product(entry, tile, local, local_index);
  }
  return sum;
}

// One k plane's product (a_base(entry), b_base(entry)) of this thread's block.
fn shared_plane_product(entry: u32, tile: vec3u, local: vec3u, local_index: u32) -> mat4x4f {
  let a_first = a_base(entry);
  let b_first = b_base(entry);
  let tile_row0 = tile.y * WORKGROUP_Y * 4u;
  let tile_col0 = tile.x * WORKGROUP_X * 4u;
  let threads = WORKGROUP_X * WORKGROUP_Y;
  var sum = mat4x4f();
  for (var slice_k0 = 0u; slice_k0 < p.k; slice_k0 += 4u * K_BLOCKS) {
    // Neighbouring threads load blocks that are neighbours along the operand's contiguous dimension.
    for (var i = local_index; i < WORKGROUP_Y * K_BLOCKS; i += threads) {
      let row_block = select(i / K_BLOCKS, i % WORKGROUP_Y, TRANSPOSE_A);
      let k_block = select(i % K_BLOCKS, i / WORKGROUP_Y, TRANSPOSE_A);
      let row0 = tile_row0 + row_block * 4u;
      let k0 = slice_k0 + k_block * 4u;
      var block: mat4x4f;
      if (k0 + 4u <= p.k) { block = a_block(a_start(a_first, row0, k0)); } else { block = a_block_tail(a_first, row0, k0); }
      for (var c = 0u; c < 4u; c++) { a_tile[(k_block * 4u + c) * WORKGROUP_Y + row_block] = vec4<arithmetic>(block[c]); }
    }
    for (var i = local_index; i < WORKGROUP_X * K_BLOCKS; i += threads) {
      let col_block = select(i % WORKGROUP_X, i / K_BLOCKS, TRANSPOSE_B);
      let k_block = select(i / WORKGROUP_X, i % K_BLOCKS, TRANSPOSE_B);
      let col0 = tile_col0 + col_block * 4u;
      let k0 = slice_k0 + k_block * 4u;
      var block: mat4x4f;
      if (k0 + 4u <= p.k) { block = b_block(b_start(b_first, k0, col0)); } else { block = b_block_tail(b_first, k0, col0); }
      for (var c = 0u; c < 4u; c++) { b_tile[(k_block * 4u + c) * WORKGROUP_X + col_block] = vec4<arithmetic>(block[c]); }
    }
    workgroupBarrier();
    for (var k_block = 0u; k_block < K_BLOCKS; k_block++) {
      let a_at = k_block * 4u * WORKGROUP_Y + local.y;
      let b_at = k_block * 4u * WORKGROUP_X + local.x;
      let a_here = mat4x4<arithmetic>(a_tile[a_at], a_tile[a_at + WORKGROUP_Y], a_tile[a_at + 2u * WORKGROUP_Y], a_tile[a_at + 3u * WORKGROUP_Y]);
      let b_here = mat4x4<arithmetic>(b_tile[b_at], b_tile[b_at + WORKGROUP_X], b_tile[b_at + 2u * WORKGROUP_X], b_tile[b_at + 3u * WORKGROUP_X]);
      sum += mat4x4f(b_here * a_here);
    }
    workgroupBarrier();
  }
  return sum;
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_shared(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_id) local: vec3u,
                 @builtin(local_invocation_index) local_index: u32) {
  let tile = first_workgroup() + workgroup;
  let product = shared_product(tile, local, local_index);
  let row0 = (tile.y * WORKGROUP_Y + local.y) * 4u;
  let col0 = (tile.x * WORKGROUP_X + local.x) * 4u;
  if (row0 < p.m && col0 < p.n) { store_block(product, tile.z, row0, col0, vec4f(0.0)); }
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_shared_bias(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_id) local: vec3u,
                      @builtin(local_invocation_index) local_index: u32) {
  let tile = first_workgroup() + workgroup;
  let product = shared_product(tile, local, local_index);
  let row0 = (tile.y * WORKGROUP_Y + local.y) * 4u;
  let col0 = (tile.x * WORKGROUP_X + local.x) * 4u;
  if (row0 < p.m && col0 < p.n) { store_block(product, tile.z, row0, col0, bias_row(tile.z, col0)); }
}

// ---- bias gradient ----------------------------------------------------------------------------

const COLUMN_SUMS_WORKGROUP = 64u;

// out[col] (+)= sum over the m rows of a[m, n] (a single sweep: n columns in parallel, rows in order).
@compute @workgroup_size(COLUMN_SUMS_WORKGROUP)
fn column_sums(@builtin(workgroup_id) workgroup: vec3u, @builtin(num_workgroups) groups: vec3u,
               @builtin(local_invocation_index) local: u32) {
  let col = (workgroup.y * groups.x + workgroup.x) * COLUMN_SUMS_WORKGROUP + local;
  if (col >= p.n) { return; }
  var sum = 0.0;
  for (var row = 0u; row < p.m; row++) {
    sum += a[row * p.n + col];
  }
  if (p.accumulate != 0u) { sum += out[col]; }
  out[col] = sum;
}
