// Multi-head scaled dot-product attention: probs = softmax(scale * q kᵀ (+ causal mask)), out = probs v,
// per (batch, head), and its backward. q, k, v, out and their gradients are [batch, seq, heads * head_dim].
//
// No workgroup memory or barriers (costly on SwiftShader; rows are at most a few hundred keys). Each
// thread computes a BLOCK x BLOCK block of a product in vec4 registers, so 8 loads feed 16
// multiply-adds. Positions and dimensions past the end are clamped when loading and skipped when
// storing: no size has to be a multiple of BLOCK.
// - attention_probs and attention_qk_grad: a thread owns BLOCK whole query rows of the
//   [batch, heads, seq, seq] matrices, so it also finishes each row's softmax (or softmax backward).
// - attention_weighted_sum (out = probs v, dq = dqk k) and attention_key_value_grad (dk and dv in one
//   pass): a thread owns BLOCK positions x BLOCK dimensions of a [batch, seq, heads * head_dim] result.
// Masked (future) keys hold exact zeros in probs and dqk, so a block straddling the causal diagonal
// needs no masking when it reads them.
// Every product (q k, probs v, and the gradients' dout v, dqk k, dqk q, probs dout) is computed in
// `arithmetic` and added to f32 sums: f32 throughout, or in the f16 variant (shaders.ts; the 'f16'
// precision) each product of half-precision operands rounded to half. The softmax and its gradient
// stay f32 in both.

struct Params {
  batch: u32,
  seq_len: u32,
  heads: u32,
  head_dim: u32,
  causal: u32,      // 1: query i sees keys 0..i only
  scale: f32,       // scores = scale * q·k
  accumulate: u32,  // 1: gradient kernels add into their outputs instead of overwriting them
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> probs: array<f32>;
// d loss / d(q·k), [batch, heads, seq, seq]: written by attention_qk_grad for the two kernels after it.
@group(0) @binding(6) var<storage, read_write> dqk: array<f32>;
// attention_weighted_sum serves both out = probs v and dq = dqk k.
@group(0) @binding(7) var<storage, read> weights: array<f32>;
@group(0) @binding(8) var<storage, read> values: array<f32>;
@group(0) @binding(9) var<storage, read_write> result: array<f32>;
@group(0) @binding(10) var<storage, read_write> dk: array<f32>;
@group(0) @binding(11) var<storage, read_write> dv: array<f32>;

const WORKGROUP_SIZE = 64u;
const BLOCK = 4u;  // the width of vec4
const LOWEST_F32 = -0x1.fffffep+127f;

alias arithmetic = f32;


// #include "grid.wgsl"

fn block_count(size: u32) -> u32 {
  return (size + BLOCK - 1u) / BLOCK;
}

// The block of positions first..first+3, each clamped to the last position so that loads stay in bounds.
fn clamped_positions(first: u32) -> vec4u {
  return min(vec4u(first) + vec4u(0u, 1u, 2u, 3u), vec4u(p.seq_len - 1u));
}

fn clamped_dims(first: u32) -> vec4u {
  return min(vec4u(first) + vec4u(0u, 1u, 2u, 3u), vec4u(p.head_dim - 1u));
}

// Keys 0..key_end(query) are visible to query.
fn key_end(query: u32) -> u32 {
  return select(p.seq_len, query + 1u, p.causal == 1u);
}

// Offset of (batch, position, head, 0) in a [batch, seq, heads * head_dim] tensor.
fn token_offset(batch: u32, position: u32, head: u32) -> u32 {
  return ((batch * p.seq_len + position) * p.heads + head) * p.head_dim;
}

// Offset of (batch, head, query, 0) in a [batch, heads, seq, seq] matrix.
fn row_start(batch: u32, head: u32, query: u32) -> u32 {
  return ((batch * p.heads + head) * p.seq_len + query) * p.seq_len;
}

// token_offset and row_start for BLOCK positions at once.
fn token_offsets(batch: u32, positions: vec4u, head: u32) -> vec4u {
  return ((batch * p.seq_len + positions) * p.heads + head) * p.head_dim;
}

fn row_starts(batch: u32, head: u32, queries: vec4u) -> vec4u {
  return ((batch * p.heads + head) * p.seq_len + queries) * p.seq_len;
}

// BLOCK query rows (first..first+3) of one (batch, head).
struct QueryBlock {
  batch: u32,
  head: u32,
  first: u32,
}

// Threads are numbered ((batch * heads + head) * query blocks + block): neighbours share (batch, head)
// and read the same key rows.
fn query_block(index: u32) -> QueryBlock {
  let blocks = block_count(p.seq_len);
  let batch_head = index / blocks;
  return QueryBlock(batch_head / p.heads, batch_head % p.heads, (index % blocks) * BLOCK);
}

fn query_block_count() -> u32 {
  return p.batch * p.heads * block_count(p.seq_len);
}

// BLOCK positions x BLOCK dimensions of a [batch, seq, heads * head_dim] tensor.
struct TokenBlock {
  batch: u32,
  head: u32,
  first_position: u32,
  first_dim: u32,
}

// Threads are numbered (((batch * heads + head) * position blocks + position block) * dim blocks +
// dim block): neighbours share their rows of probs or dqk.
fn token_block(index: u32) -> TokenBlock {
  let dim_blocks = block_count(p.head_dim);
  let position_blocks = block_count(p.seq_len);
  let rest = index / dim_blocks;
  let batch_head = rest / position_blocks;
  return TokenBlock(batch_head / p.heads, batch_head % p.heads, (rest % position_blocks) * BLOCK,
                    (index % dim_blocks) * BLOCK);
}

fn token_block_count() -> u32 {
  return query_block_count() * block_count(p.head_dim);
}

// probs[query] = softmax over visible keys of scale * q_query · k_key, and exactly 0 for masked keys.
@compute @workgroup_size(WORKGROUP_SIZE)
fn attention_probs(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                   @builtin(local_invocation_index) local: u32) {
  let index = flat_index(wg, groups, local);
  if (index >= query_block_count()) { return; }
  let rows = query_block(index);
  let queries = clamped_positions(rows.first);
  let query_offsets = token_offsets(rows.batch, queries, rows.head);
  var row_max = vec4f(LOWEST_F32);
  for (var first_key = 0u; first_key < key_end(queries.w); first_key += BLOCK) {
    let keys = clamped_positions(first_key);
    let key_offsets = token_offsets(rows.batch, keys, rows.head);
    // Zeroed explicitly: Dawn on SwiftShader kept the last iteration's values for a bare declaration.
    var products = array<vec4f, BLOCK>();  // [query][key]
    for (var d = 0u; d < p.head_dim; d++) {
      let key_values = vec4<arithmetic>(vec4f(k[key_offsets.x + d], k[key_offsets.y + d], k[key_offsets.z + d],
                                           k[key_offsets.w + d]));
      products[0] += vec4f(arithmetic(q[query_offsets.x + d]) * key_values);
      products[1] += vec4f(arithmetic(q[query_offsets.y + d]) * key_values);
      products[2] += vec4f(arithmetic(q[query_offsets.z + d]) * key_values);
      products[3] += vec4f(arithmetic(q[query_offsets.w + d]) * key_values);
    }
    for (var r = 0u; r < BLOCK; r++) {
      let query = rows.first + r;
      if (query >= p.seq_len) { break; }
      let row = row_start(rows.batch, rows.head, query);
      for (var c = 0u; c < BLOCK && first_key + c < key_end(query); c++) {
        let score = p.scale * products[r][c];
        probs[row + first_key + c] = score;
        row_max[r] = max(row_max[r], score);
      }
    }
  }
  for (var r = 0u; r < BLOCK; r++) {
    let query = rows.first + r;
    if (query >= p.seq_len) { break; }
    let row = row_start(rows.batch, rows.head, query);
    var total = 0.0;
    for (var key = 0u; key < key_end(query); key++) {
      let e = exp(probs[row + key] - row_max[r]);
      probs[row + key] = e;
      total += e;
    }
    let inverse_total = 1.0 / total;  // total >= 1: the row's maximum contributes exp(0)
    for (var key = 0u; key < key_end(query); key++) {
      probs[row + key] *= inverse_total;
    }
    for (var key = key_end(query); key < p.seq_len; key++) {
      probs[row + key] = 0.0;
    }
  }
}

// result[position] (+)= sum over keys of weights[position, key] * values[key], per (batch, head):
// out = probs v (never accumulates) and dq = dqk k.
@compute @workgroup_size(WORKGROUP_SIZE)
fn attention_weighted_sum(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                          @builtin(local_invocation_index) local: u32) {
  let index = flat_index(wg, groups, local);
  if (index >= token_block_count()) { return; }
  let tile = token_block(index);
  let positions = clamped_positions(tile.first_position);
  let dims = clamped_dims(tile.first_dim);
  let weight_offsets = row_starts(tile.batch, tile.head, positions);
  var sums: array<vec4f, BLOCK>;  // [position][dim]
  for (var key = 0u; key < key_end(positions.w); key++) {
    let value_offset = token_offset(tile.batch, key, tile.head);
    let value = vec4<arithmetic>(vec4f(values[value_offset + dims.x], values[value_offset + dims.y],
                                    values[value_offset + dims.z], values[value_offset + dims.w]));
    sums[0] += vec4f(arithmetic(weights[weight_offsets.x + key]) * value);
    sums[1] += vec4f(arithmetic(weights[weight_offsets.y + key]) * value);
    sums[2] += vec4f(arithmetic(weights[weight_offsets.z + key]) * value);
    sums[3] += vec4f(arithmetic(weights[weight_offsets.w + key]) * value);
  }
  for (var r = 0u; r < BLOCK; r++) {
    let position = tile.first_position + r;
    if (position >= p.seq_len) { break; }
    let row = token_offset(tile.batch, position, tile.head);
    for (var c = 0u; c < BLOCK && tile.first_dim + c < p.head_dim; c++) {
      let at = row + tile.first_dim + c;
      result[at] = select(sums[r][c], result[at] + sums[r][c], p.accumulate == 1u);
    }
  }
}

// Softmax backward through the scaling, per query row:
// dprobs_key = dout_query · v_key;  dqk_key = scale * probs_key * (dprobs_key - sum_j probs_j dprobs_j),
// and exactly 0 for masked keys.
@compute @workgroup_size(WORKGROUP_SIZE)
fn attention_qk_grad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                     @builtin(local_invocation_index) local: u32) {
  let index = flat_index(wg, groups, local);
  if (index >= query_block_count()) { return; }
  let rows = query_block(index);
  let queries = clamped_positions(rows.first);
  let query_offsets = token_offsets(rows.batch, queries, rows.head);
  var expected_dprobs = vec4f(0.0);  // per query: sum over keys of probs * dprobs
  for (var first_key = 0u; first_key < key_end(queries.w); first_key += BLOCK) {
    let keys = clamped_positions(first_key);
    let key_offsets = token_offsets(rows.batch, keys, rows.head);
    // Zeroed explicitly: Dawn on SwiftShader kept the last iteration's values for a bare declaration.
    var dprobs = array<vec4f, BLOCK>();  // [query][key]
    for (var d = 0u; d < p.head_dim; d++) {
      let key_values = vec4<arithmetic>(vec4f(v[key_offsets.x + d], v[key_offsets.y + d], v[key_offsets.z + d],
                                           v[key_offsets.w + d]));
      dprobs[0] += vec4f(arithmetic(dout[query_offsets.x + d]) * key_values);
      dprobs[1] += vec4f(arithmetic(dout[query_offsets.y + d]) * key_values);
      dprobs[2] += vec4f(arithmetic(dout[query_offsets.z + d]) * key_values);
      dprobs[3] += vec4f(arithmetic(dout[query_offsets.w + d]) * key_values);
    }
    for (var r = 0u; r < BLOCK; r++) {
      let query = rows.first + r;
      if (query >= p.seq_len) { break; }
      let row = row_start(rows.batch, rows.head, query);
      for (var c = 0u; c < BLOCK && first_key + c < key_end(query); c++) {
        let at = row + first_key + c;
        dqk[at] = dprobs[r][c];
        expected_dprobs[r] += probs[at] * dprobs[r][c];
      }
    }
  }
  for (var r = 0u; r < BLOCK; r++) {
    let query = rows.first + r;
    if (query >= p.seq_len) { break; }
    let row = row_start(rows.batch, rows.head, query);
    for (var key = 0u; key < key_end(query); key++) {
      let at = row + key;
      dqk[at] = p.scale * probs[at] * (dqk[at] - expected_dprobs[r]);
    }
    for (var key = key_end(query); key < p.seq_len; key++) {
      dqk[row + key] = 0.0;
    }
  }
}

// For a block of key positions: dk (+)= sum over queries of dqk[query, key] * q_query and
// dv (+)= sum over queries of probs[query, key] * dout_query, in one pass over the queries.
@compute @workgroup_size(WORKGROUP_SIZE)
fn attention_key_value_grad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                            @builtin(local_invocation_index) local: u32) {
  let index = flat_index(wg, groups, local);
  if (index >= token_block_count()) { return; }
  let tile = token_block(index);
  let keys = clamped_positions(tile.first_position);
  let dims = clamped_dims(tile.first_dim);
  var dk_sums: array<vec4f, BLOCK>;  // [key][dim]
  var dv_sums: array<vec4f, BLOCK>;
  // Under the causal mask queries before the block see none of its keys.
  for (var query = select(0u, tile.first_position, p.causal == 1u); query < p.seq_len; query++) {
    let row = row_start(tile.batch, tile.head, query);
    let query_offset = token_offset(tile.batch, query, tile.head);
    let query_value = vec4<arithmetic>(vec4f(q[query_offset + dims.x], q[query_offset + dims.y],
                                          q[query_offset + dims.z], q[query_offset + dims.w]));
    let dout_value = vec4<arithmetic>(vec4f(dout[query_offset + dims.x], dout[query_offset + dims.y],
                                         dout[query_offset + dims.z], dout[query_offset + dims.w]));
    dk_sums[0] += vec4f(arithmetic(dqk[row + keys.x]) * query_value);
    dk_sums[1] += vec4f(arithmetic(dqk[row + keys.y]) * query_value);
    dk_sums[2] += vec4f(arithmetic(dqk[row + keys.z]) * query_value);
    dk_sums[3] += vec4f(arithmetic(dqk[row + keys.w]) * query_value);
    dv_sums[0] += vec4f(arithmetic(probs[row + keys.x]) * dout_value);
    dv_sums[1] += vec4f(arithmetic(probs[row + keys.y]) * dout_value);
    dv_sums[2] += vec4f(arithmetic(probs[row + keys.z]) * dout_value);
    dv_sums[3] += vec4f(arithmetic(probs[row + keys.w]) * dout_value);
  }
  for (var r = 0u; r < BLOCK; r++) {
    let key = tile.first_position + r;
    if (key >= p.seq_len) { break; }
    let row = token_offset(tile.batch, key, tile.head);
    for (var c = 0u; c < BLOCK && tile.first_dim + c < p.head_dim; c++) {
      let at = row + tile.first_dim + c;
      dk[at] = select(dk_sums[r][c], dk[at] + dk_sums[r][c], p.accumulate == 1u);
      dv[at] = select(dv_sums[r][c], dv[at] + dv_sums[r][c], p.accumulate == 1u);
    }
  }
}
