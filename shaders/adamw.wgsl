// Optimizer steps, one invocation per parameter: AdamW as torch.optim.AdamW (decoupled weight decay,
// bias-corrected moments) and plain SGD. Scalars derived from the step are computed in float64 on the CPU.

struct Params {
  count: u32,
  grad_scale: f32,            // applied to the gradient first, e.g. 1 / accumulation steps
  step_size: f32,             // AdamW: lr / (1 - beta1^t); SGD: lr
  lr_times_decay: f32,        // lr * weight_decay
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,       // from float64: 1 - 0.999 in f32 arithmetic is off by 1e-5
  bias_correction2_sqrt: f32, // sqrt(1 - beta2^t)
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

const WORKGROUP_SIZE = 256u;

// #include "grid.wgsl"

// param -= lr * wd * param; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), in torch's order of operations.
@compute @workgroup_size(WORKGROUP_SIZE)
fn adamw_update(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
                @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  let g = grad[i] * p.grad_scale;
  let decayed = param[i] - p.lr_times_decay * param[i];
  let m_next = p.beta1 * m[i] + p.one_minus_beta1 * g;
  let v_next = p.beta2 * v[i] + p.one_minus_beta2 * g * g;
  m[i] = m_next;
  v[i] = v_next;
  param[i] = decayed - p.step_size * m_next / (sqrt(v_next) / p.bias_correction2_sqrt + p.eps);
}

// param -= lr * grad_scale * grad
@compute @workgroup_size(WORKGROUP_SIZE)
fn sgd_update(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) groups: vec3u,
              @builtin(local_invocation_index) local: u32) {
  let i = flat_index(wg, groups, local);
  if (i >= p.count) { return; }
  param[i] -= p.step_size * grad[i] * p.grad_scale;
}
