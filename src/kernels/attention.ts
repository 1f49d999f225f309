// Multi-head scaled dot-product attention with an optional causal mask, forward and backward
// (shaders/attention.wgsl).

import type { GpuContext } from '../gpu/context';
import type { ParamValues } from '../gpu/params';
import { type Arithmetic, shaderInterface } from '../gpu/shaders';
import type { Tensor } from '../gpu/tensor';
import { grid1d } from './grid';
import { expectElements, expectPositiveIntegers } from './shapes';

const SHADER = 'attention';
// A thread computes BLOCK query rows, or BLOCK positions x BLOCK dimensions.
const WORKGROUP_SIZE = shaderInterface(SHADER).constant('WORKGROUP_SIZE');
const BLOCK = shaderInterface(SHADER).constant('BLOCK');

export interface AttentionShape {
  batch: number;
  seqLen: number;
  heads: number;
  headDim: number;
  /** Query i sees keys 0..i only (CLIP's text tower). */
  causal: boolean;
  /** Multiplies q·k before the softmax; usually headDim ** -0.5. */
  scale: number;
}

/** The precision of attention's products (shaders/attention.wgsl): 'f16' needs shader-f16. Default 'f32'. */
export interface AttentionOptions {
  arithmetic?: Arithmetic;
}

/**
 * q, k, v, out: [batch, seqLen, heads * headDim], the layout of q_proj/k_proj/v_proj outputs (head h uses columns h*headDim..).
 * probs: [batch, heads, seqLen, seqLen] softmax(scale * q k^T (+ causal mask)), saved for backward.
 * out = probs · v, per head, written back in [batch, seqLen, heads*headDim].
 */
export function attentionForward(
  ctx: GpuContext,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  probs: Tensor,
  shape: AttentionShape,
  { arithmetic }: AttentionOptions = {},
): void {
  const op = 'attentionForward';
  checkShapes(op, shape, [q, k, v, out], probs);
  ctx.dispatch({
    shader: SHADER,
    entry: 'attention_probs',
    arithmetic,
    params: packParams(shape, false),
    bindings: { q, k, probs },
    workgroups: queryBlockGrid(shape),
  });
  ctx.dispatch({
    shader: SHADER,
    entry: 'attention_weighted_sum',
    arithmetic,
    params: packParams(shape, false),
    bindings: { weights: probs, values: v, result: out },
    workgroups: tokenBlockGrid(shape),
  });
}

/**
 * dq, dk, dv (+)= gradients of out w.r.t. q, k, v given dout; uses the saved probs.
 * With accumulate the gradients are added to what dq, dk and dv hold; otherwise they are overwritten.
 * `scratch` holds d loss / d(q kᵀ) between the backward's dispatches.
 */
export function attentionBackward(
  ctx: GpuContext,
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  probs: Tensor,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  shape: AttentionShape,
  scratch: AttentionScratch,
  { accumulate = false, arithmetic }: AttentionOptions & { accumulate?: boolean } = {},
): void {
  const op = 'attentionBackward';
  checkShapes(op, shape, [dout, q, k, v, dq, dk, dv], probs);
  const dqk = scratch.qkGradientOf(probs.size);
  ctx.dispatch({
    shader: SHADER,
    entry: 'attention_qk_grad',
    arithmetic,
    params: packParams(shape, false),
    bindings: { v, dout, probs, dqk },
    workgroups: queryBlockGrid(shape),
  });
  ctx.dispatch({
    shader: SHADER,
    entry: 'attention_weighted_sum',
    arithmetic,
    params: packParams(shape, accumulate),
    bindings: { weights: dqk, values: k, result: dq },
    workgroups: tokenBlockGrid(shape),
  });
  ctx.dispatch({
    shader: SHADER,
    entry: 'attention_key_value_grad',
    arithmetic,
    params: packParams(shape, accumulate),
    bindings: { q, dout, probs, dqk, dk, dv },
    workgroups: tokenBlockGrid(shape),
  });
}

/**
 * The backward's d loss / d(q kᵀ), which lives only between the dispatches of one backward, so one
 * buffer serves every layer of both towers; its owner (ClipModel) keeps it across steps. A buffer per
 * call would allocate and zero-fill as much as probs (tens of MB for ViT-B/16) per layer per step, and
 * could only be freed once the GPU had finished. It grows to the largest probs seen.
 */
export class AttentionScratch {
  private qkGradient: Tensor | null = null;

  constructor(private readonly ctx: GpuContext) {}

  /** A tensor of at least `size` elements. */
  qkGradientOf(size: number): Tensor {
    if (this.qkGradient && this.qkGradient.size >= size) return this.qkGradient;
    if (this.qkGradient) {
      this.ctx.submit(); // recorded dispatches that use the old buffer must reach the queue before it is destroyed
      this.qkGradient.destroy();
    }
    this.qkGradient = this.ctx.tensor([size], 'attention d(q·k) scratch');
    return this.qkGradient;
  }

  destroy(): void {
    this.qkGradient?.destroy();
    this.qkGradient = null;
  }
}

function packParams(
  { batch, seqLen, heads, headDim, causal, scale }: AttentionShape,
  accumulate: boolean,
): ParamValues {
  return { batch, seqLen, heads, headDim, causal, scale, accumulate };
}

function tokenShape({ batch, seqLen, heads, headDim }: AttentionShape): number[] {
  return [batch, seqLen, heads * headDim];
}

function probsShape({ batch, seqLen, heads }: AttentionShape): number[] {
  return [batch, heads, seqLen, seqLen];
}

/** One thread per BLOCK query rows of each (batch, head). */
function queryBlockGrid({ batch, seqLen, heads }: AttentionShape): [number, number] {
  return grid1d(batch * heads * Math.ceil(seqLen / BLOCK), WORKGROUP_SIZE);
}

/** One thread per BLOCK positions x BLOCK dimensions of each (batch, head). */
function tokenBlockGrid({ batch, seqLen, heads, headDim }: AttentionShape): [number, number] {
  return grid1d(batch * heads * Math.ceil(seqLen / BLOCK) * Math.ceil(headDim / BLOCK), WORKGROUP_SIZE);
}

/**
 * Checks the shape's fields, then the tensors by element count, so a [batch * seqLen, width] tensor
 * serves as [batch, seqLen, width].
 */
function checkShapes(op: string, shape: AttentionShape, tokens: Tensor[], probs: Tensor): void {
  const { batch, seqLen, heads, headDim } = shape;
  expectPositiveIntegers(op, { batch, seqLen, heads, headDim });
  if (!Number.isFinite(shape.scale)) throw new RangeError(`${op}: scale must be finite, got ${shape.scale}`);
  for (const t of tokens) expectElements(op, t, tokenShape(shape));
  expectElements(op, probs, probsShape(shape));
}
