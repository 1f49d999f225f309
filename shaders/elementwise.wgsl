// Element-wise operations: quick_gelu (CLIP's activation, x * sigmoid(1.702 x)), residual add and
// scaling, each forward and backward. One thread per element over a folded 1-D grid.

struct Params {
  count: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> inout: array<f32>;

const WORKGROUP_SIZE = 256u;

// #include "grid.wgsl"

fn sigmoid(v: f32) -> f32 {
  return 1.0 / (1.0 + exp(-v));
}

// out = x * sigmoid(1.702 x)
@compute @workgroup_size(WORKGROUP_SIZE)
fn quick_gelu_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                      @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  let v = x[i];
  out[i] = v * sigmoid(1.702 * v);
}

// out = dout * d/dx[x * sigmoid(1.702 x)] with dout in y
@compute @workgroup_size(WORKGROUP_SIZE)
fn quick_gelu_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                       @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  let v = x[i];
  let s = sigmoid(1.702 * v);
  out[i] = y[i] * (s + 1.702 * v * s * (1.0 - s));
}

// inout += scale * x   (residual add with scale 1; gradient accumulation; its backward is itself)
@compute @workgroup_size(WORKGROUP_SIZE)
fn add_scaled_inplace(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                      @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  inout[i] = inout[i] + p.scale * x[i];
}

// out = x + y
@compute @workgroup_size(WORKGROUP_SIZE)
fn add(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
       @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  out[i] = x[i] + y[i];
}

// out = scale * x   (forward; the backward is the same op on the gradient)
@compute @workgroup_size(WORKGROUP_SIZE)
fn scale(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
         @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  out[i] = p.scale * x[i];
}
