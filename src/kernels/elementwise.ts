// quick_gelu, residual add and scaling (shaders/elementwise.wgsl).

import type { GpuContext } from '../gpu/context';
import { shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './grid';
import { sameSize } from './shapes';

const SHADER = 'elementwise';
const WORKGROUP_SIZE = shaderInterface(SHADER).constant('WORKGROUP_SIZE');

/** out = x * sigmoid(1.702 x) */
export function quickGeluForward(ctx: GpuContext, x: Tensor, out: Tensor): void {
  const count = sameSize('quickGeluForward', x, out);
  ctx.dispatch({
    shader: SHADER, entry: 'quick_gelu_forward', params: { count, scale: 0 },
    bindings: { x, out }, workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** dx = dout * quick_gelu'(x) */
export function quickGeluBackward(ctx: GpuContext, x: Tensor, dout: Tensor, dx: Tensor): void {
  const count = sameSize('quickGeluBackward', x, dout, dx);
  ctx.dispatch({
    shader: SHADER, entry: 'quick_gelu_backward', params: { count, scale: 0 },
    bindings: { x, y: dout, out: dx }, workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** out = a + b (residual add forward; its backward passes the gradient to both inputs unchanged). */
export function add(ctx: GpuContext, a: Tensor, b: Tensor, out: Tensor): void {
  const count = sameSize('add', a, b, out);
  ctx.dispatch({
    shader: SHADER, entry: 'add', params: { count, scale: 0 },
    bindings: { x: a, y: b, out }, workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** target += scale * x (residual add in place, gradient accumulation). */
export function addScaledInPlace(ctx: GpuContext, target: Tensor, x: Tensor, scale = 1): void {
  const count = sameSize('addScaledInPlace', target, x);
  ctx.dispatch({
    shader: SHADER, entry: 'add_scaled_inplace', params: { count, scale },
    bindings: { x, inout: target }, workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}

/** out = scale * x; the backward of scaling is scaling the gradient by the same factor. */
export function scale(ctx: GpuContext, x: Tensor, factor: number, out: Tensor): void {
  const count = sameSize('scale', x, out);
  ctx.dispatch({
    shader: SHADER, entry: 'scale', params: { count, scale: factor },
    bindings: { x, out }, workgroups: grid1d(count, WORKGROUP_SIZE),
  });
}
