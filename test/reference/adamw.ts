// Plain float64 references for shaders/adamw.wgsl, in torch.optim.AdamW's form.

export interface AdamWState {
  param: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

export interface AdamWReferenceSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
  gradScale: number;
}

/** One AdamW step in place on state. */
export function adamwStep(state: AdamWState, grad: ArrayLike<number>, s: AdamWReferenceSettings): void {
  const { param, m, v } = state;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * s.gradScale;
    param[i] -= s.lr * s.weightDecay * param[i];
    m[i] = s.beta1 * m[i] + (1 - s.beta1) * g;
    v[i] = s.beta2 * v[i] + (1 - s.beta2) * g * g;
    const mHat = m[i] / (1 - s.beta1 ** s.step);
    const vHat = v[i] / (1 - s.beta2 ** s.step);
    param[i] -= (s.lr * mHat) / (Math.sqrt(vHat) + s.eps);
  }
}

export function sgdStep(param: Float64Array, grad: ArrayLike<number>, lr: number, gradScale: number): void {
  for (let i = 0; i < param.length; i++) param[i] -= lr * gradScale * grad[i];
}
