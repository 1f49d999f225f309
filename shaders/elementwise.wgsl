// Element-wise operations: the MLP activations CLIP checkpoints use (quick_gelu, gelu, and gelu's tanh
// approximation), residual add and scaling, each forward and backward. One thread per element over a
// folded 1-D grid.

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

// ---- quick_gelu: x * sigmoid(1.702 x) (OpenAI's checkpoints) ----------------------------------

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

// ---- gelu: x * Phi(x) = x/2 * erfc(-x / sqrt(2)), the exact form (transformers' "gelu") --------

const FRAC_1_SQRT_2 = 0.70710678118654752;
const FRAC_1_SQRT_2PI = 0.39894228040143268;

// erfc(z) with a relative error below 1.2e-7 for every z (Numerical Recipes' erfcc, a Chebyshev fit):
// WGSL has no erf. f32 rounding of exp's argument (a few ulps of z^2) dominates that in the tails.
// Relative accuracy in the tails is why gelu uses erfc rather than 1 + erf: x Phi(x) for x = -4 is
// 1e-4, which 1 + erf would compute from a difference of numbers near 1.
fn erfc(z: f32) -> f32 {
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.5 * a);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
             t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let tail = t * exp(-a * a + poly);
  return select(2.0 - tail, tail, z >= 0.0);
}

// Phi(x), the standard normal distribution function.
fn normal_cdf(v: f32) -> f32 {
  return 0.5 * erfc(-v * FRAC_1_SQRT_2);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  let v = x[i];
  out[i] = v * normal_cdf(v);
}

// out = dout * (Phi(x) + x phi(x)) with dout in y
@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                 @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  let v = x[i];
  out[i] = y[i] * (normal_cdf(v) + v * FRAC_1_SQRT_2PI * exp(-0.5 * v * v));
}

// ---- gelu_tanh: x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) ----------------------------
// transformers' "gelu_new" and "gelu_pytorch_tanh". (1 + tanh(u)) / 2 = sigmoid(2u), which stays
// finite where a tanh built from exp(2u) would overflow.

const SQRT_2_OVER_PI = 0.79788456080286536;
const GELU_TANH_CUBIC = 0.044715;

fn gelu_tanh_argument(v: f32) -> f32 {
  return 2.0 * SQRT_2_OVER_PI * (v + GELU_TANH_CUBIC * v * v * v);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_tanh_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                     @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  let v = x[i];
  out[i] = v * sigmoid(gelu_tanh_argument(v));
}

// out = dout * (s + x s (1 - s) 2u'), s = sigmoid(2u), with dout in y
@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_tanh_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                      @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  let v = x[i];
  let s = sigmoid(gelu_tanh_argument(v));
  let argument_slope = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * v * v);
  out[i] = y[i] * (s + v * s * (1.0 - s) * argument_slope);
}

// ---- residual add and scaling ------------------------------------------------------------------

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
