// CLIP's contrastive classification head: L2 normalisation of features, scaled cosine logits
// (image x text), and softmax cross-entropy over classes; forward and backward of each.

struct Params {
  rows: u32,        // rows normalised / logit rows / output rows of the product
  columns: u32,     // feature width / classes / output columns of the product
  inner: u32,       // product: the summed dimension
  a_row_stride: u32, a_inner_stride: u32,    // product: A(row, k) = a[row * a_row_stride + k * a_inner_stride]
  b_inner_stride: u32, b_column_stride: u32, // product: B(k, col) = b[k * b_inner_stride + col * b_column_stride]
  scale: f32,       // product: logit scale; cross-entropy backward: loss scale
  accumulate: u32,  // 1 adds into the output instead of overwriting it
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// Written by the normalisation forward, read by its backward.
@group(0) @binding(2) var<storage, read_write> normalized: array<f32>;
@group(0) @binding(3) var<storage, read_write> norms: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read> a: array<f32>;
@group(0) @binding(7) var<storage, read> b: array<f32>;
@group(0) @binding(8) var<storage, read_write> product: array<f32>;
@group(0) @binding(9) var<storage, read> logits: array<f32>;
@group(0) @binding(10) var<storage, read> labels: array<f32>;
@group(0) @binding(11) var<storage, read_write> losses: array<f32>;
// Written by the cross-entropy forward, read by its backward.
@group(0) @binding(12) var<storage, read_write> probs: array<f32>;
@group(0) @binding(13) var<storage, read_write> dlogits: array<f32>;

const WORKGROUP_SIZE = 256u;
// Threads sharing one row in the row reductions (a power of two, for the tree): narrow on
// SwiftShader, where barriers are costly (src/kernels/classifier.ts).
override ROW_THREADS: u32 = 256u;
// F.normalize's floor on the norm: a zero row normalises to zero instead of NaN.
const MIN_NORM = 1e-12;

var<workgroup> partials: array<f32, ROW_THREADS>;

// #include "grid.wgsl"


// Sum of value over the workgroup; every invocation must call it.
fn workgroup_sum(local: u32, value: f32) -> f32 {
  partials[local] = value;
  workgroupBarrier();
  for (var stride = ROW_THREADS / 2u; stride > 0u; stride = stride / 2u) {
    if (local < stride) {
      partials[local] += partials[local + stride];
    }
    workgroupBarrier();
  }
  let total = partials[0];
  workgroupBarrier(); // the next reduction overwrites partials
  return total;
}

// Maximum of value over the workgroup; every invocation must call it.
fn workgroup_max(local: u32, value: f32) -> f32 {
  partials[local] = value;
  workgroupBarrier();
  for (var stride = ROW_THREADS / 2u; stride > 0u; stride = stride / 2u) {
    if (local < stride) {
      partials[local] = max(partials[local], partials[local + stride]);
    }
    workgroupBarrier();
  }
  let total = partials[0];
  workgroupBarrier();
  return total;
}

// normalized = x / norm, norm = max(||x||, MIN_NORM) saved per row. One workgroup per row.
@compute @workgroup_size(ROW_THREADS)
fn l2_normalize_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                        @builtin(local_invocation_index) local: u32) {
  let row = row_index(wg, groups);
  if (row >= p.rows) { return; }
  let start = row * p.columns;
  var squares = 0.0;
  for (var c = local; c < p.columns; c += ROW_THREADS) {
    squares += x[start + c] * x[start + c];
  }
  let norm = max(sqrt(workgroup_sum(local, squares)), MIN_NORM);
  for (var c = local; c < p.columns; c += ROW_THREADS) {
    normalized[start + c] = x[start + c] / norm;
  }
  if (local == 0u) {
    norms[row] = norm;
  }
}

// dx (+)= (dout - y * (dout . y)) / norm, with y the normalized row.
@compute @workgroup_size(ROW_THREADS)
fn l2_normalize_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                         @builtin(local_invocation_index) local: u32) {
  let row = row_index(wg, groups);
  if (row >= p.rows) { return; }
  let start = row * p.columns;
  var projection = 0.0;
  for (var c = local; c < p.columns; c += ROW_THREADS) {
    projection += dout[start + c] * normalized[start + c];
  }
  let dout_dot_y = workgroup_sum(local, projection);
  let norm = norms[row];
  for (var c = local; c < p.columns; c += ROW_THREADS) {
    let i = start + c;
    let gradient = (dout[i] - normalized[i] * dout_dot_y) / norm;
    dx[i] = select(gradient, dx[i] + gradient, p.accumulate != 0u);
  }
}

// product[rows, columns] (+)= scale * A B, with A and B read through strides so that one kernel
// serves img . txt^T (forward), dLogits . txt (image gradient) and dLogits^T . img (text gradient).
// Each workgroup computes a TILE x TILE block of the product, staging TILE-wide slices of A and B
// in workgroup memory.
const TILE = 16u;
var<workgroup> a_tile: array<f32, TILE * TILE>;
var<workgroup> b_tile: array<f32, TILE * TILE>;

@compute @workgroup_size(TILE, TILE)
fn scaled_product(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.y * TILE + lid.y;
  let col = wg.x * TILE + lid.x;
  var sum = 0.0;
  for (var k0 = 0u; k0 < p.inner; k0 += TILE) {
    // This invocation stages A(row, k0 + lid.x) and B(k0 + lid.y, col); zeros pad the edges.
    let a_k = k0 + lid.x;
    let b_k = k0 + lid.y;
    var a_value = 0.0;
    if (row < p.rows && a_k < p.inner) {
      a_value = a[row * p.a_row_stride + a_k * p.a_inner_stride];
    }
    var b_value = 0.0;
    if (b_k < p.inner && col < p.columns) {
      b_value = b[b_k * p.b_inner_stride + col * p.b_column_stride];
    }
    a_tile[lid.y * TILE + lid.x] = a_value;
    b_tile[lid.y * TILE + lid.x] = b_value;
    workgroupBarrier();
    for (var k = 0u; k < TILE; k++) {
      sum += a_tile[lid.y * TILE + k] * b_tile[k * TILE + lid.x];
    }
    workgroupBarrier();
  }
  if (row < p.rows && col < p.columns) {
    let i = row * p.columns + col;
    let value = p.scale * sum;
    product[i] = select(value, product[i] + value, p.accumulate != 0u);
  }
}

// losses[row] = logsumexp(logits[row]) - logits[row, label]; probs = softmax(logits[row]), both
// after subtracting the row maximum. One workgroup per row.
@compute @workgroup_size(ROW_THREADS)
fn softmax_cross_entropy_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                                 @builtin(local_invocation_index) local: u32) {
  let row = row_index(wg, groups);
  if (row >= p.rows) { return; }
  let start = row * p.columns;
  var row_max = logits[start];
  for (var c = local; c < p.columns; c += ROW_THREADS) {
    row_max = max(row_max, logits[start + c]);
  }
  row_max = workgroup_max(local, row_max);
  var exp_sum = 0.0;
  for (var c = local; c < p.columns; c += ROW_THREADS) {
    exp_sum += exp(logits[start + c] - row_max);
  }
  exp_sum = workgroup_sum(local, exp_sum);
  for (var c = local; c < p.columns; c += ROW_THREADS) {
    probs[start + c] = exp(logits[start + c] - row_max) / exp_sum;
  }
  if (local == 0u) {
    // Labels are class indices by contract; the clamp only keeps a bad one inside the row.
    let label = min(u32(labels[row]), p.columns - 1u);
    losses[row] = log(exp_sum) + row_max - logits[start + label];
  }
}

// dlogits = (probs - onehot(label)) * scale, one invocation per logit.
@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_cross_entropy_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                                  @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.rows * p.columns) { return; }
  let is_label = f32(i % p.columns) == labels[i / p.columns];
  dlogits[i] = (probs[i] - select(0.0, 1.0, is_label)) * p.scale;
}
