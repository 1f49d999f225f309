// Block-LoRA (plain LoRA is n = 1): h += s * drop(x) A_s^T (B_1 + ... + B_n)^T, with the block sum,
// the shared down-projection and the weight gradients. The up-projection and the adapter's share of
// dx are added by matmul.wgsl as it stores the frozen layer's product (its low-rank term).
//
// Both products here are thin: between a wide activation [rows, width] (x or h, width d_in or d_out)
// and a weight W(c, j) of logical shape [width, rank] (rank b = r / n, 1 to 8 in practice) read
// through strides, so one kernel serves A_s (stored [b, d_in]) and B (stored [d_out, b]):
//   project:          thin[m, j]  = scale * sum_c drop(wide)[m, c] W(c, j)      u, du
//   weight_gradients: dW(c, j)  (+)= scale * sum_m drop(wide)[m, c] thin[m, j]  every dB_i and dA_s,
//                                                                               in one dispatch
// Dropout (dropout.wgsl) applies to the wide operand only when it is x. Every sum runs in a fixed
// order (no atomics): bit-reproducible.

struct Params {
  rows: u32,                 // M: every dimension of the wide operand but the last
  width: u32,                // project: d_in or d_out; weight_gradients: d_out
  rank: u32,                 // b
  weight_rank_stride: u32,   // project: W(c, j) is at c * weight_width_stride + j * weight_rank_stride
  weight_width_stride: u32,
  block_count: u32,          // n: sum_blocks reads, weight_gradients writes, this many blocks
  block_size: u32,           // weight_gradients: elements of one block (d_out * b)
  accumulate: u32,           // weight_gradients: 1 adds into the gradients already there
  scale: f32,                // project: the product's; weight_gradients: dB's (dA's is 1)
  drop_threshold: u32,       // an element of x is dropped when its hash < drop_threshold; 0: no dropout
  keep_scale: f32,           // 1 / (1 - p)
  seed: u32,
  a_width: u32,              // weight_gradients: d_in
  b_column_tiles: u32,       // weight_gradients: workgroups along x that compute dB; the rest compute dA
  planes: u32,               // project: this many products at once (q, k and v's down-projections), plane i
  wide_plane_stride: u32,    //   reading wide, weight and writing out from i * these strides (wide's 0: shared)
  weight_plane_stride: u32,  //   and masking with its own seed (dropout.wgsl's plane_dropout_factor); 1: one
  out_plane_stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wide: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> thin: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> blocks: array<f32>;
@group(0) @binding(6) var<storage, read> block_sums_table: array<vec4u>;
// weight_gradients' second product: dA_s from x and du (the first, dB, reads wide = g and thin = u).
@group(0) @binding(7) var<storage, read> x: array<f32>;
@group(0) @binding(8) var<storage, read> du: array<f32>;
@group(0) @binding(9) var<storage, read_write> d_a: array<f32>;

// Rank columns one workgroup of project / weight_gradients keeps in registers; the grid's z walks
// chunks of this many (src/kernels/block_lora.ts reads it from here).
const RANK_CHUNK = 8u;
const ELEMENT_THREADS = 256u;
// project's workgroup: threads sharing one row's dot products (a power of two, for the reduction
// tree; 1: a thread per row, no reduction), times rows.
override PROJECT_THREADS: u32 = 64u;
override PROJECT_ROWS: u32 = 1u;
// weight_gradients tile: consecutive columns for coalesced reads, times lanes that split the rows.
override GRADIENT_COLUMNS: u32 = 32u;
override GRADIENT_ROW_LANES: u32 = 8u;

var<workgroup> row_partials: array<array<f32, RANK_CHUNK>, PROJECT_THREADS * PROJECT_ROWS>;
var<workgroup> column_partials: array<array<f32, RANK_CHUNK>, GRADIENT_COLUMNS * GRADIENT_ROW_LANES>;

fn weight_index(column: u32, rank_column: u32) -> u32 {
  return column * p.weight_width_stride + rank_column * p.weight_rank_stride;
}

// #include "dropout.wgsl"

// Every adapted matrix's sum of blocks in one dispatch: out[sum_offset + i] = blocks[blocks_offset + i]
// + ... + blocks[blocks_offset + (n - 1) * block_size + i], added in block order. Row y of the grid
// is entry y of the table (sum_offset, blocks_offset, block_size, unused); a thread per element.
@compute @workgroup_size(ELEMENT_THREADS)
fn sum_blocks(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) local: u32) {
  let entry = block_sums_table[wg.y];
  let i = wg.x * ELEMENT_THREADS + local;
  if (i >= entry.z) { return; }
  var total = blocks[entry.y + i];
  for (var block = 1u; block < p.block_count; block++) {
    total += blocks[entry.y + block * entry.z + i];
  }
  out[entry.x + i] = total;
}

// out[m, j] = scale * sum_c drop(wide)[m, c] W(c, j): a workgroup takes PROJECT_ROWS rows (folded over
// x and y) and a rank chunk of one plane (z: plane * chunks + chunk); a row's threads stride over c,
// then a tree in workgroup memory adds their partial sums.
@compute @workgroup_size(PROJECT_THREADS, PROJECT_ROWS)
fn project(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
           @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) local: u32) {
  let row = (wg.y * groups.x + wg.x) * PROJECT_ROWS + lid.y;
  let rank_chunks = (p.rank + RANK_CHUNK - 1u) / RANK_CHUNK;
  let plane = wg.z / rank_chunks;
  let first_rank = (wg.z % rank_chunks) * RANK_CHUNK;
  let chunk = min(RANK_CHUNK, p.rank - first_rank);
  let wide_first = plane * p.wide_plane_stride;
  let weight_first = plane * p.weight_plane_stride;
  var sums: array<f32, RANK_CHUNK>;
  if (row < p.rows) {
    for (var column = lid.x; column < p.width; column += PROJECT_THREADS) {
      let index = row * p.width + column;
      let value = wide[wide_first + index] * plane_dropout_factor(index, plane);
      for (var j = 0u; j < chunk; j++) {
        sums[j] += value * weight[weight_first + weight_index(column, first_rank + j)];
      }
    }
  }
  if (PROJECT_THREADS > 1u) {
    row_partials[local] = sums;
    workgroupBarrier();
    for (var stride = PROJECT_THREADS / 2u; stride > 0u; stride /= 2u) {
      if (lid.x < stride) {
        for (var j = 0u; j < chunk; j++) {
          row_partials[local][j] += row_partials[local + stride][j];
        }
      }
      workgroupBarrier();
    }
    sums = row_partials[local - lid.x];
  }
  if (row >= p.rows) { return; }
  for (var j = lid.x; j < chunk; j += PROJECT_THREADS) { // PROJECT_THREADS may be below RANK_CHUNK
    out[plane * p.out_plane_stride + row * p.rank + first_rank + j] = p.scale * sums[j];
  }
}

// weight_gradients' operands: g[m, c] and u[m, j] for dB; drop(x)[m, c] and du[m, j] for dA.
fn gradient_wide(for_b: bool, row: u32, column: u32) -> f32 {
  if (for_b) { return wide[row * p.width + column]; }
  let index = row * p.a_width + column;
  return x[index] * dropout_factor(index);
}

fn gradient_thin(for_b: bool, row: u32, j: u32) -> f32 {
  return select(du[row * p.rank + j], thin[row * p.rank + j], for_b);
}

// Both weight gradients of an adapted matrix in one dispatch:
//   dB_i(c, j) (+)= scale * sum_m g[m, c] u[m, j], the same for every block i      (c < d_out)
//   dA_s(j, c) (+)= sum_m drop(x)[m, c] du[m, j]                                    (c < d_in)
// A workgroup owns GRADIENT_COLUMNS columns of one of them (x: dB's tiles first) and a rank chunk
// (z); its row lanes take every GRADIENT_ROW_LANES-th row, and lane 0 adds the lanes' sums in lane
// order.
@compute @workgroup_size(GRADIENT_COLUMNS, GRADIENT_ROW_LANES)
fn weight_gradients(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
                    @builtin(local_invocation_index) local: u32) {
  let for_b = wg.x < p.b_column_tiles; // the same for the whole workgroup
  let column = select(wg.x - p.b_column_tiles, wg.x, for_b) * GRADIENT_COLUMNS + lid.x;
  let width = select(p.a_width, p.width, for_b);
  let first_rank = wg.z * RANK_CHUNK;
  let chunk = min(RANK_CHUNK, p.rank - first_rank);
  var sums: array<f32, RANK_CHUNK>;
  if (column < width) {
    for (var row = lid.y; row < p.rows; row += GRADIENT_ROW_LANES) {
      let value = gradient_wide(for_b, row, column);
      for (var j = 0u; j < chunk; j++) {
        sums[j] += value * gradient_thin(for_b, row, first_rank + j);
      }
    }
  }
  var total = sums;
  if (GRADIENT_ROW_LANES > 1u) { // one lane (SwiftShader's choice) has nothing to add, nor a barrier to pay
    column_partials[local] = sums;
    workgroupBarrier();
    total = column_partials[lid.x];
    for (var lane = 1u; lane < GRADIENT_ROW_LANES; lane++) {
      for (var j = 0u; j < chunk; j++) {
        total[j] += column_partials[lane * GRADIENT_COLUMNS + lid.x][j];
      }
    }
  }
  if (lid.y != 0u || column >= width) { return; }
  for (var j = 0u; j < chunk; j++) {
    if (for_b) {
      let gradient = p.scale * total[j];
      let at = column * p.rank + first_rank + j; // B is [d_out, b]
      for (var block = 0u; block < p.block_count; block++) {
        let i = block * p.block_size + at;
        if (p.accumulate != 0u) { out[i] += gradient; } else { out[i] = gradient; }
      }
    } else {
      let at = (first_rank + j) * p.a_width + column; // A_s is [b, d_in]
      if (p.accumulate != 0u) { d_a[at] += total[j]; } else { d_a[at] = total[j]; }
    }
  }
}
