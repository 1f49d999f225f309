// MLP activations, residual add and scaling (shaders/elementwise.wgsl).

import type { GpuContext } from '../gpu/context';
import { shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './grid';
import { sameSize } from './shapes';

const SHADER = 'elementwise';
const WORKGROUP_SIZE = shaderInterface(SHADER).constant('WORKGROUP_SIZE');

/**
 * The activations the shader computes, by the names of its entry points:
 * quick_gelu x sigmoid(1.702 x); gelu x Phi(x) (erf form); gelu_tanh x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 */
export type Activation = 'quick_gelu' | 'gelu' | 'gelu_tanh';

/** out = act(x) */
export function activationForward(ctx: GpuContext, activation: Activation, x: Tensor, out: Tensor): void {
  const count = sameSize('activationForward', x, out);
  ctx.dispatch({
    shader: SHADER,
    entry: `${activation}_forward`,
    params: { count, scale: 0 },
    bindings: { x, out },
    workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** dx = dout * act'(x) */
export function activationBackward(ctx: GpuContext, activation: Activation, x: Tensor, dout: Tensor, dx: Tensor): void {
  const count = sameSize('activationBackward', x, dout, dx);
  ctx.dispatch({
    shader: SHADER,
    entry: `${activation}_backward`,
    params: { count, scale: 0 },
    bindings: { x, y: dout, out: dx },
    workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** out = a + b (residual add forward; its backward passes the gradient to both inputs unchanged). */
export function add(ctx: GpuContext, a: Tensor, b: Tensor, out: Tensor): void {
  const count = sameSize('add', a, b, out);
  ctx.dispatch({
    shader: SHADER,
    entry: 'add',
    params: { count, scale: 0 },
    bindings: { x: a, y: b, out },
    workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** target += scale * x (residual add in place, gradient accumulation). */
export function addScaledInPlace(ctx: GpuContext, target: Tensor, x: Tensor, scale = 1): void {
  const count = sameSize('addScaledInPlace', target, x);
  ctx.dispatch({
    shader: SHADER,
    entry: 'add_scaled_inplace',
    params: { count, scale },
    bindings: { x, inout: target },
    workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** out = scale * x; the backward of scaling is scaling the gradient by the same factor. */
export function scale(ctx: GpuContext, x: Tensor, factor: number, out: Tensor): void {
  const count = sameSize('scale', x, out);
  ctx.dispatch({
    shader: SHADER,
    entry: 'scale',
    params: { count, scale: factor },
    bindings: { x, out },
    workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}
