// Multi-head scaled dot-product attention: probs = softmax(scale * q kᵀ (+ causal mask)), out = probs v,
// per (batch, head), and its backward. q, k, v, out and their gradients are [batch, seq, heads * head_dim].
//
// Two kinds of thread, neither using workgroup memory or barriers (costly on SwiftShader, and the rows
// are short: at most a few hundred keys):
// - a row thread owns one (batch, head, query) row of the [batch, heads, seq, seq] matrices and walks it
//   several times (scores, max, exp-sum, normalise; or d(q·k)), so each softmax is fused in one thread;
// - an element thread owns one value of a [batch, seq, heads, head_dim] result and sums over one axis
//   of those matrices (out = probs v and dq = d(q·k) k by rows; dk and dv together by columns).
// Row threads are numbered ((batch * heads + head) * seq + query), so a workgroup's threads share
// (batch, head) and read the same key rows together. With a causal mask only keys 0..query are visited.

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

const ROW_WORKGROUP_SIZE = 64u;
const ELEMENT_WORKGROUP_SIZE = 256u;
const LOWEST_F32 = -0x1.fffffep+127f;

fn flat_index(wg: vec3u, groups: vec3u, local: u32, workgroup_size: u32) -> u32 {
  return (wg.y * groups.x + wg.x) * workgroup_size + local;
}

// One (batch, head, query) row of the [batch, heads, seq, seq] matrices.
struct Row {
  batch: u32,
  head: u32,
  query: u32,
  start: u32,     // offset of the row's first element
  key_end: u32,   // keys visible to the query: 0..key_end
}

fn row_of(index: u32) -> Row {
  let query = index % p.seq_len;
  let batch_head = index / p.seq_len;
  let key_end = select(p.seq_len, query + 1u, p.causal == 1u);
  return Row(batch_head / p.heads, batch_head % p.heads, query, index * p.seq_len, key_end);
}

// Offset of (batch, position, head, 0) in a [batch, seq, heads * head_dim] tensor.
fn token_offset(batch: u32, position: u32, head: u32) -> u32 {
  return ((batch * p.seq_len + position) * p.heads + head) * p.head_dim;
}

// One value of a [batch, seq, heads * head_dim] result.
struct Element {
  batch: u32,
  position: u32,
  head: u32,
  dim: u32,
}

fn element_of(index: u32) -> Element {
  let token_head = index / p.head_dim;
  let token = token_head / p.heads;
  return Element(token / p.seq_len, token % p.seq_len, token_head % p.heads, index % p.head_dim);
}

// Offset of (batch, head, query, 0) in a [batch, heads, seq, seq] matrix.
fn row_start(batch: u32, head: u32, query: u32) -> u32 {
  return ((batch * p.heads + head) * p.seq_len + query) * p.seq_len;
}

fn element_count() -> u32 {
  return p.batch * p.seq_len * p.heads * p.head_dim;
}

// probs[row] = softmax(scale * q_query · k_key for key < key_end), exactly 0 for masked keys.
@compute @workgroup_size(ROW_WORKGROUP_SIZE)
fn attention_probs(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                   @builtin(local_invocation_index) local: u32) {
  let index = flat_index(wg, groups, local, ROW_WORKGROUP_SIZE);
  if (index >= p.batch * p.heads * p.seq_len) { return; }
  let row = row_of(index);
  let query = token_offset(row.batch, row.query, row.head);
  var row_max = LOWEST_F32;
  for (var key = 0u; key < row.key_end; key++) {
    let key_row = token_offset(row.batch, key, row.head);
    var product = 0.0;
    for (var d = 0u; d < p.head_dim; d++) {
      product += q[query + d] * k[key_row + d];
    }
    let score = p.scale * product;
    probs[row.start + key] = score;
    row_max = max(row_max, score);
  }
  var total = 0.0;
  for (var key = 0u; key < row.key_end; key++) {
    let e = exp(probs[row.start + key] - row_max);
    probs[row.start + key] = e;
    total += e;
  }
  let inverse_total = 1.0 / total;  // total >= 1: the row's maximum contributes exp(0)
  for (var key = 0u; key < row.key_end; key++) {
    probs[row.start + key] *= inverse_total;
  }
  for (var key = row.key_end; key < p.seq_len; key++) {
    probs[row.start + key] = 0.0;
  }
}

// result[batch, query, head, :] (+)= sum over visible keys of weights[batch, head, query, key] * values[batch, key, head, :]
// out = probs v (never accumulates) and dq = dqk k.
@compute @workgroup_size(ELEMENT_WORKGROUP_SIZE)
fn attention_weighted_sum(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                          @builtin(local_invocation_index) local: u32) {
  let index = flat_index(wg, groups, local, ELEMENT_WORKGROUP_SIZE);
  if (index >= element_count()) { return; }
  let e = element_of(index);
  let weight_row = row_start(e.batch, e.head, e.position);
  let key_end = select(p.seq_len, e.position + 1u, p.causal == 1u);
  var sum = 0.0;
  for (var key = 0u; key < key_end; key++) {
    sum += weights[weight_row + key] * values[token_offset(e.batch, key, e.head) + e.dim];
  }
  if (p.accumulate == 1u) {
    result[index] += sum;
  } else {
    result[index] = sum;
  }
}

// Softmax backward through the scaling, for one row:
// dprobs_key = dout_query · v_key;  dqk_key = scale * probs_key * (dprobs_key - sum_j probs_j dprobs_j).
// Masked keys are left unwritten: the kernels that read dqk stop at the same key_end.
@compute @workgroup_size(ROW_WORKGROUP_SIZE)
fn attention_qk_grad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                     @builtin(local_invocation_index) local: u32) {
  let index = flat_index(wg, groups, local, ROW_WORKGROUP_SIZE);
  if (index >= p.batch * p.heads * p.seq_len) { return; }
  let row = row_of(index);
  let query = token_offset(row.batch, row.query, row.head);
  var expected_dprobs = 0.0;
  for (var key = 0u; key < row.key_end; key++) {
    let key_row = token_offset(row.batch, key, row.head);
    var dprobs = 0.0;
    for (var d = 0u; d < p.head_dim; d++) {
      dprobs += dout[query + d] * v[key_row + d];
    }
    dqk[row.start + key] = dprobs;
    expected_dprobs += probs[row.start + key] * dprobs;
  }
  for (var key = 0u; key < row.key_end; key++) {
    let at = row.start + key;
    dqk[at] = p.scale * probs[at] * (dqk[at] - expected_dprobs);
  }
}

// For one key position: dk (+)= sum over the queries that see it of dqk[query, key] * q_query, and
// dv (+)= the same sum of probs[query, key] * dout_query. One pass over the column feeds both.
@compute @workgroup_size(ELEMENT_WORKGROUP_SIZE)
fn attention_key_value_grad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                            @builtin(local_invocation_index) local: u32) {
  let index = flat_index(wg, groups, local, ELEMENT_WORKGROUP_SIZE);
  if (index >= element_count()) { return; }
  let e = element_of(index);
  let first_query = select(0u, e.position, p.causal == 1u);
  var dk_sum = 0.0;
  var dv_sum = 0.0;
  for (var query = first_query; query < p.seq_len; query++) {
    let at = row_start(e.batch, e.head, query) + e.position;
    let query_value = token_offset(e.batch, query, e.head) + e.dim;
    dk_sum += dqk[at] * q[query_value];
    dv_sum += probs[at] * dout[query_value];
  }
  if (p.accumulate == 1u) {
    dk[index] += dk_sum;
    dv[index] += dv_sum;
  } else {
    dk[index] = dk_sum;
    dv[index] = dv_sum;
  }
}
