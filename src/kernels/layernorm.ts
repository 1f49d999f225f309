// Layer norm over the last dimension, forward and backward (shaders/layernorm.wgsl).

import type { GpuContext } from '../gpu/context';
import { shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './grid';
import { expectElements, shapeError } from './shapes';
import { isCpuAdapter } from './tuning';

const SHADER = 'layernorm';
const PARAMS_COLUMN_TILE = shaderInterface(SHADER).constant('COLUMN_TILE'); // columns per workgroup of layernorm_backward_params

/** Rows and columns of x, normalised over its last dimension C = weight.size. */
function rowsAndColumns(op: string, x: Tensor, weight: Tensor): { rows: number; columns: number } {
  const columns = weight.size;
  if (columns === 0 || x.shape[x.shape.length - 1] !== columns) {
    throw shapeError(op, x, `last dimension ${columns} (${weight.label}.size)`);
  }
  return { rows: x.size / columns, columns };
}

/**
 * Threads that share one row. Measured on SwiftShader (forward, ms per dispatch): 1600x768 rows took
 * 2914 at 256 threads, 375 at 64, 84 at 8 and 238 at 1; 272x48 took 463 at 256 and 4.5 at 8: its
 * workgroup barriers are that costly on a CPU. GPUs want the full width to hide memory latency.
 */
function rowConstants(ctx: GpuContext): { WORKGROUP_SIZE: number } {
  return { WORKGROUP_SIZE: isCpuAdapter(ctx) ? 8 : 256 };
}

/**
 * out = (x - mean) / sqrt(var + eps) * weight + bias over the last dimension (biased variance, as
 * PyTorch). Saves mean and rstd = 1 / sqrt(var + eps), one per row, for the backward.
 */
export function layerNormForward(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  out: Tensor,
  mean: Tensor,
  rstd: Tensor,
  eps: number,
): void {
  const op = 'layerNormForward';
  const { rows, columns } = rowsAndColumns(op, x, weight);
  expectElements(op, bias, columns, 'one per column');
  expectElements(op, out, x.size, `as ${x.label}`);
  for (const perRow of [mean, rstd]) expectElements(op, perRow, rows, 'one per row');
  ctx.dispatch({
    shader: SHADER,
    entry: 'layernorm_forward',
    params: { rows, columns, eps, accumulate: false },
    constants: rowConstants(ctx),
    bindings: { x, weight, bias, out, mean, rstd },
    workgroups: grid1d(rows, 1),
  });
}

/**
 * dx (+)= d(layer norm)/dx applied to dout, from the mean and rstd the forward saved. With
 * dWeight and dBias (given together) also dWeight (+)= sum_rows dout * xhat, dBias (+)= sum_rows dout.
 * `accumulate` adds into every gradient instead of overwriting it.
 */
export function layerNormBackward(
  ctx: GpuContext,
  dout: Tensor,
  x: Tensor,
  weight: Tensor,
  mean: Tensor,
  rstd: Tensor,
  dx: Tensor,
  options: { accumulate?: boolean; dWeight?: Tensor; dBias?: Tensor } = {},
): void {
  const op = 'layerNormBackward';
  const { dWeight, dBias } = options;
  if ((dWeight === undefined) !== (dBias === undefined)) {
    throw new RangeError(`${op}: pass dWeight and dBias together (one kernel computes both)`);
  }
  const { rows, columns } = rowsAndColumns(op, x, weight);
  for (const likeX of [dout, dx]) expectElements(op, likeX, x.size, `as ${x.label}`);
  for (const perRow of [mean, rstd]) expectElements(op, perRow, rows, 'one per row');
  for (const perColumn of [dWeight, dBias]) if (perColumn) expectElements(op, perColumn, columns, 'one per column');
  const packed = { rows, columns, eps: 0, accumulate: options.accumulate ?? false };
  ctx.dispatch({
    shader: SHADER,
    entry: 'layernorm_backward_input',
    params: packed,
    constants: rowConstants(ctx),
    bindings: { x, weight, mean, rstd, dout, dx },
    workgroups: grid1d(rows, 1),
  });
  if (dWeight && dBias) {
    ctx.dispatch({
      shader: SHADER,
      entry: 'layernorm_backward_params',
      params: packed,
      bindings: { x, mean, rstd, dout, dweight: dWeight, dbias: dBias },
      workgroups: [Math.ceil(columns / PARAMS_COLUMN_TILE)],
    });
  }
}
