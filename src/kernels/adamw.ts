// Optimizer steps (shaders/adamw.wgsl): AdamW as torch.optim.AdamW, and plain SGD.

import type { GpuContext } from '../gpu/context';
import { shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './grid';
import { sameSize } from './shapes';

const SHADER = 'adamw';
const WORKGROUP_SIZE = shaderInterface(SHADER).constant('WORKGROUP_SIZE');

export interface AdamWSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number t, for the bias corrections. */
  step: number;
  /** Multiplies the gradient first, e.g. 1 / accumulationSteps. */
  gradScale?: number;
}

interface OptimizerParams {
  count: number;
  gradScale: number;
  stepSize: number;
  lrTimesDecay?: number;
  beta1?: number;
  beta2?: number;
  /** sqrt(1 - beta2^t) */
  biasCorrection2Sqrt?: number;
  eps?: number;
}

/** adamw.wgsl's Params; SGD leaves the AdamW-only fields zero. */
function packParams({
  count,
  gradScale,
  stepSize,
  lrTimesDecay = 0,
  beta1 = 0,
  beta2 = 0,
  biasCorrection2Sqrt = 0,
  eps = 0,
}: OptimizerParams) {
  // 1 - beta in float64 here: 1 - 0.999 computed in f32 is off by 1e-5 relative.
  return {
    count,
    gradScale,
    stepSize,
    lrTimesDecay,
    beta1,
    oneMinusBeta1: 1 - beta1,
    beta2,
    oneMinusBeta2: 1 - beta2,
    biasCorrection2Sqrt,
    eps,
  };
}

/**
 * One AdamW step in place on param, m and v (torch.optim.AdamW, decoupled weight decay):
 * p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), with g = gradScale * grad.
 */
export function adamwUpdate(
  ctx: GpuContext,
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  settings: AdamWSettings,
): void {
  const { lr, beta1, beta2, eps, weightDecay, step, gradScale = 1 } = settings;
  if (!Number.isInteger(step) || step < 1)
    throw new RangeError(`adamwUpdate: step must be an integer from 1, got ${step}`);
  const count = sameSize('adamwUpdate', param, grad, m, v);
  const packed = packParams({
    count,
    gradScale,
    stepSize: lr / (1 - beta1 ** step),
    lrTimesDecay: lr * weightDecay,
    beta1,
    beta2,
    biasCorrection2Sqrt: Math.sqrt(1 - beta2 ** step),
    eps,
  });
  ctx.dispatch({
    shader: SHADER,
    entry: 'adamw_update',
    params: packed,
    bindings: { grad, param, m, v },
    workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** param -= lr * gradScale * grad: plain SGD, for exact comparison with outside references. */
export function sgdUpdate(ctx: GpuContext, param: Tensor, grad: Tensor, lr: number, gradScale = 1): void {
  const count = sameSize('sgdUpdate', param, grad);
  ctx.dispatch({
    shader: SHADER,
    entry: 'sgd_update',
    params: packParams({ count, gradScale, stepSize: lr }),
    bindings: { grad, param },
    workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}
