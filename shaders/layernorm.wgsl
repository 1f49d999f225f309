// Layer norm over the last dimension (PyTorch nn.LayerNorm: biased variance, eps inside the sqrt),
// forward and backward. One workgroup per row; rows fold into a 2-D grid as in elementwise.wgsl.

struct Params {
  rows: u32,
  columns: u32,
  eps: f32,
  accumulate: u32, // backward: 1 adds into the gradients instead of overwriting them
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// Written by the forward, read by the backward.
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(7) var<storage, read> dout: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;
@group(0) @binding(9) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(10) var<storage, read_write> dbias: array<f32>;

// Threads per row, chosen per adapter by the wrapper (see layernorm.ts).
override WORKGROUP_SIZE: u32 = 256u;
var<workgroup> partial_sums: array<vec2f, WORKGROUP_SIZE>;

// #include "grid.wgsl"

// Sum of `value` over the workgroup (two sums at once); every invocation must call it.
fn workgroup_sum(local: u32, value: vec2f) -> vec2f {
  partial_sums[local] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride = stride / 2u) {
    if (local < stride) {
      partial_sums[local] += partial_sums[local + stride];
    }
    workgroupBarrier();
  }
  let total = partial_sums[0];
  workgroupBarrier(); // the next call overwrites partial_sums
  return total;
}

// out = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps). Two passes over the row
// (mean, then squared deviations) so that a large common offset does not cancel the variance.
@compute @workgroup_size(WORKGROUP_SIZE)
fn layernorm_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                     @builtin(local_invocation_index) local: u32) {
  let row = row_index(wg, groups);
  if (row >= p.rows) { return; }
  let start = row * p.columns;
  let n = f32(p.columns);

  var sum = 0.0;
  for (var c = local; c < p.columns; c += WORKGROUP_SIZE) {
    sum += x[start + c];
  }
  let row_mean = workgroup_sum(local, vec2f(sum, 0.0)).x / n;

  var squared_deviations = 0.0;
  for (var c = local; c < p.columns; c += WORKGROUP_SIZE) {
    let d = x[start + c] - row_mean;
    squared_deviations += d * d;
  }
  let row_rstd = inverseSqrt(workgroup_sum(local, vec2f(squared_deviations, 0.0)).x / n + p.eps);

  for (var c = local; c < p.columns; c += WORKGROUP_SIZE) {
    out[start + c] = (x[start + c] - row_mean) * row_rstd * weight[c] + bias[c];
  }
  if (local == 0u) {
    mean[row] = row_mean;
    rstd[row] = row_rstd;
  }
}

// dx (+)= rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = dout * weight and
// xhat = (x - mean) * rstd recomputed from the saved statistics.
@compute @workgroup_size(WORKGROUP_SIZE)
fn layernorm_backward_input(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                            @builtin(local_invocation_index) local: u32) {
  let row = row_index(wg, groups);
  if (row >= p.rows) { return; }
  let start = row * p.columns;
  let row_mean = mean[row];
  let row_rstd = rstd[row];

  var sums = vec2f(0.0);
  for (var c = local; c < p.columns; c += WORKGROUP_SIZE) {
    let g = dout[start + c] * weight[c];
    let xhat = (x[start + c] - row_mean) * row_rstd;
    sums += vec2f(g, g * xhat);
  }
  let means = workgroup_sum(local, sums) / f32(p.columns);

  for (var c = local; c < p.columns; c += WORKGROUP_SIZE) {
    let i = start + c;
    let g = dout[i] * weight[c];
    let xhat = (x[i] - row_mean) * row_rstd;
    let gradient = row_rstd * (g - means.x - xhat * means.y);
    dx[i] = select(gradient, dx[i] + gradient, p.accumulate != 0u);
  }
}

// dweight[c] (+)= sum over rows of dout * xhat; dbias[c] (+)= sum over rows of dout.
// A workgroup owns COLUMN_TILE columns; its ROW_LANES lanes stride over the rows, then combine.
const COLUMN_TILE = 32u;
const ROW_LANES = 8u;
var<workgroup> lane_sums: array<vec2f, COLUMN_TILE * ROW_LANES>;

@compute @workgroup_size(COLUMN_TILE, ROW_LANES)
fn layernorm_backward_params(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wg.x * COLUMN_TILE + lid.x;
  var sums = vec2f(0.0);
  if (c < p.columns) {
    for (var row = lid.y; row < p.rows; row += ROW_LANES) {
      let i = row * p.columns + c;
      let xhat = (x[i] - mean[row]) * rstd[row];
      sums += vec2f(dout[i] * xhat, dout[i]);
    }
  }
  lane_sums[lid.y * COLUMN_TILE + lid.x] = sums;
  workgroupBarrier();
  if (lid.y == 0u && c < p.columns) {
    var total = vec2f(0.0);
    for (var lane = 0u; lane < ROW_LANES; lane++) {
      total += lane_sums[lane * COLUMN_TILE + lid.x];
    }
    dweight[c] = select(total.x, dweight[c] + total.x, p.accumulate != 0u);
    dbias[c] = select(total.y, dbias[c] + total.y, p.accumulate != 0u);
  }
}
