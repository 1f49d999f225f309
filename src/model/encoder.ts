// CLIPEncoderLayer and CLIPEncoder (pre-LN transformer blocks shared by both towers), forward and
// backward to the activations and the adapters: h += attn(LN1(h)); h += mlp(LN2(h)).

import type { LinearAdapter, ModelAdapters } from './adapter';
import type { TargetMatrix, Tower } from '../common/recipe';
import type { GpuContext } from '../gpu/context';
import type { Arithmetic } from '../gpu/shaders';
import { sliceAlignedElements, Tensor } from '../gpu/tensor';
import { attentionBackward, attentionForward, type AttentionScratch, type AttentionShape } from '../kernels/attention';
import {
  loraBackward,
  loraDown,
  loraDownPlanes,
  loraInputGradient,
  loraInputGradientPlanes,
  loraUp,
  loraUpPlanes,
} from '../kernels/block_lora';
import { planeSeed, type LoraDropout } from '../kernels/dropout';
import { activationBackward, activationForward, add, type Activation } from '../kernels/elementwise';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm';
import {
  linearBackwardInput,
  linearBackwardInputPlanes,
  linearForward,
  linearForwardPlanes,
  type Planes,
} from '../kernels/matmul';
import { HIDDEN_ACTIVATIONS, type TowerConfig } from './config';
import type { ClipWeights } from './weights';

export interface Linear {
  weight: Tensor;
  bias: Tensor | null;
}

/** The projections computed as one product, in the planes' order. */
const QKV = ['q_proj', 'k_proj', 'v_proj'] as const;

export interface EncoderLayerWeights {
  layer_norm1: { weight: Tensor; bias: Tensor };
  self_attn: Record<'q_proj' | 'k_proj' | 'v_proj' | 'out_proj', Linear>;
  /** q_proj, k_proj and v_proj's weights and biases as the planes of one tensor each (the tensors above are slices of them). */
  qkv: { weight: Planes; bias: Planes };
  layer_norm2: { weight: Tensor; bias: Tensor };
  mlp: Record<'fc1' | 'fc2', Linear>;
}

export function encoderLayerWeights(weights: ClipWeights, tower: Tower, layer: number): EncoderLayerWeights {
  const prefix = `${tower}_model.encoder.layers.${layer}`;
  const linear = (name: string): Linear => ({
    weight: weights.get(`${prefix}.${name}.weight`),
    bias: weights.get(`${prefix}.${name}.bias`),
  });
  const norm = (name: string) => ({
    weight: weights.get(`${prefix}.${name}.weight`),
    bias: weights.get(`${prefix}.${name}.bias`),
  });
  return {
    layer_norm1: norm('layer_norm1'),
    self_attn: {
      q_proj: linear('self_attn.q_proj'),
      k_proj: linear('self_attn.k_proj'),
      v_proj: linear('self_attn.v_proj'),
      out_proj: linear('self_attn.out_proj'),
    },
    qkv: weights.qkv(`${prefix}.self_attn`),
    layer_norm2: norm('layer_norm2'),
    mlp: { fc1: linear('mlp.fc1'), fc2: linear('mlp.fc2') },
  };
}

/** Sizes of one encoder pass: `batch` sequences of `seqLen` tokens. */
export interface EncoderShape {
  batch: number;
  seqLen: number;
  causal: boolean;
}

/** What a layer's forward keeps for its backward (per layer when training; one reused set for inference). */
export interface LayerActivations {
  mean1: Tensor;
  rstd1: Tensor;
  /** q, k and v: the planes of one tensor, which one product fills. */
  qkv: Planes;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  probs: Tensor;
  attn: Tensor;
  mid: Tensor;
  mean2: Tensor;
  rstd2: Tensor;
  /** fc1's output before the activation; the activation itself is recomputed in backward when needed. */
  fc1: Tensor;
  /** Needed only inside the forward (and gelu again for an fc2 adapter's backward): shared by all layers. */
  transient: TransientActivations;
  /** Adapter down-projections u = A_s drop(x), per adapted matrix (q, k and v's slices of qkvLoraU when all three are adapted). */
  loraU: Map<TargetMatrix, Tensor>;
  qkvLoraU: Planes | null;
}

export interface ForwardOptions {
  /** Dropout on adapter inputs is active only when training. */
  training: boolean;
  /** Mixed with each adapter's index into its dropout seed; change it every step. */
  dropoutSeed: number;
}

export function dropoutFor(adapter: LinearAdapter, options: ForwardOptions): LoraDropout {
  if (!options.training || adapter.dropout === 0) return { p: 0, seed: 0 };
  // A different mask per step and per adapted matrix (splitmix-style mixing of the two counters). q, k
  // and v count from the layer's q (adapterLayout's consecutive indices), planes apart (planeSeed), as
  // the products that run the three at once mask them.
  const plane = Math.max(0, (QKV as readonly string[]).indexOf(adapter.path.slice(adapter.path.lastIndexOf('.') + 1)));
  let seed =
    (Math.imul(options.dropoutSeed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(adapter.index - plane + 1, 0xc2b2ae35)) >>> 0;
  seed = Math.imul(seed ^ (seed >>> 16), 0x45d9f3b) >>> 0;
  return { p: adapter.dropout, seed: planeSeed((seed ^ (seed >>> 16)) >>> 0, plane) };
}

export interface TransientActivations {
  attnOut: Tensor;
  gelu: Tensor;
  fc2: Tensor;
  /**
   * The layer norms' outputs: backward recomputes them from the saved mean and rstd when an adapter
   * needs its input (q/k/v read LN1's, fc1 LN2's), which saves two [tokens, hidden] tensors a layer.
   */
  ln1: Tensor;
  ln2: Tensor;
}

/** The encoder of one tower: layers' weights, adapters, and the activations of the last recorded forward. */
export class ClipEncoder {
  readonly layers: EncoderLayerWeights[];
  readonly headDim: number;
  /** The MLP's activation kernel, from the config's hidden_act. */
  private readonly activation: Activation;
  /** The precision of the linear layers' and attention's products (the weights'). */
  private readonly arithmetic: Arithmetic;

  constructor(
    private readonly ctx: GpuContext,
    weights: ClipWeights,
    readonly tower: Tower,
    readonly config: TowerConfig,
    /** The attention backward's scratch, shared with the other tower. */
    private readonly attentionScratch: AttentionScratch,
  ) {
    this.layers = Array.from({ length: config.numLayers }, (_, i) => encoderLayerWeights(weights, tower, i));
    this.headDim = config.hiddenSize / config.numHeads;
    this.activation = HIDDEN_ACTIVATIONS[config.hiddenAct];
    this.arithmetic = weights.arithmetic;
  }

  allocateTransient(shape: EncoderShape): TransientActivations {
    const rows = shape.batch * shape.seqLen;
    const label = (name: string) => `${this.tower}.transient.${name}`;
    return {
      attnOut: this.ctx.tensor([rows, this.config.hiddenSize], label('out_proj')),
      gelu: this.ctx.tensor([rows, this.config.intermediateSize], label('activation')),
      fc2: this.ctx.tensor([rows, this.config.hiddenSize], label('fc2')),
      ln1: this.ctx.tensor([rows, this.config.hiddenSize], label('layer_norm1')),
      ln2: this.ctx.tensor([rows, this.config.hiddenSize], label('layer_norm2')),
    };
  }

  /**
   * Allocates one layer's saved activations for batch * seqLen tokens, or with `layer` 'every' the one
   * set an inference pass reuses in every layer (with room for any layer's adapters).
   */
  allocateActivations(
    shape: EncoderShape,
    layer: number | 'every',
    adapters: ModelAdapters | null,
    transient: TransientActivations,
  ): LayerActivations {
    const { ctx } = this;
    const rows = shape.batch * shape.seqLen;
    const d = this.config.hiddenSize;
    const label = (name: string) => `${this.tower}.layers.${layer}.${name}`;
    const loraU = new Map<TargetMatrix, Tensor>();
    const adapted = (matrix: TargetMatrix) =>
      adapters?.settings.targets.includes(matrix) &&
      (layer === 'every' ? adapters.hasTower(this.tower) : adapters.get(this.tower, layer, matrix) !== undefined);
    const blockRank = adapters ? adapters.settings.rank / adapters.settings.blocks : 0;
    const qkvLoraU = QKV.every(adapted) ? planesOf(ctx, [rows, blockRank], label('qkv.lora_u')) : null;
    for (const matrix of adapters?.settings.targets ?? []) {
      if (!adapted(matrix)) continue;
      const plane = (QKV as readonly TargetMatrix[]).indexOf(matrix);
      const name = label(`${matrix}.lora_u`);
      loraU.set(
        matrix,
        qkvLoraU && plane >= 0
          ? planeSlice(qkvLoraU, plane, [rows, blockRank], name)
          : ctx.tensor([rows, blockRank], name),
      );
    }
    const qkv = planesOf(ctx, [rows, d], label('qkv'));
    const [q, k, v] = QKV.map((_, i) => planeSlice(qkv, i, [rows, d], label(['q', 'k', 'v'][i])));
    return {
      mean1: ctx.tensor([rows], label('layer_norm1.mean')),
      rstd1: ctx.tensor([rows], label('layer_norm1.rstd')),
      qkv,
      q,
      k,
      v,
      probs: ctx.tensor([shape.batch, this.config.numHeads, shape.seqLen, shape.seqLen], label('attention_probs')),
      attn: ctx.tensor([rows, d], label('attention')),
      mid: ctx.tensor([rows, d], label('residual_mid')),
      mean2: ctx.tensor([rows], label('layer_norm2.mean')),
      rstd2: ctx.tensor([rows], label('layer_norm2.rstd')),
      fc1: ctx.tensor([rows, this.config.intermediateSize], label('fc1')),
      transient,
      loraU,
      qkvLoraU,
    };
  }

  attentionShape(shape: EncoderShape): AttentionShape {
    return {
      batch: shape.batch,
      seqLen: shape.seqLen,
      heads: this.config.numHeads,
      headDim: this.headDim,
      causal: shape.causal,
      scale: this.headDim ** -0.5,
    };
  }

  /** One CLIPEncoderLayer: output = input + attn(LN1(input)) + mlp(LN2(...)). */
  forwardLayer(
    layer: number,
    input: Tensor,
    output: Tensor,
    acts: LayerActivations,
    shape: EncoderShape,
    adapters: ModelAdapters | null,
    options: ForwardOptions,
  ): void {
    const { ctx, arithmetic } = this;
    const w = this.layers[layer];
    const eps = this.config.layerNormEps;
    // An adapter's down-projection runs first; matmul adds its up-projection as it stores x W0^T + b.
    const linear = (matrix: TargetMatrix, weights: Linear, x: Tensor, out: Tensor) => {
      const adapter = adapters?.get(this.tower, layer, matrix);
      let lowRank = null;
      if (adapter) {
        const u = acts.loraU.get(matrix)!;
        loraDown(ctx, x, adapter.a, u, dropoutFor(adapter, options));
        lowRank = loraUp(u, adapter.bSum, adapter.scale);
      }
      linearForward(ctx, x, weights.weight, weights.bias, out, { lowRank, arithmetic });
    };
    const { attnOut, gelu, fc2, ln1, ln2 } = acts.transient;
    layerNormForward(ctx, input, w.layer_norm1.weight, w.layer_norm1.bias, ln1, acts.mean1, acts.rstd1, eps);
    // q, k and v as one product, with their adapters' up-projections (their down-projections in one dispatch first).
    const qkv = this.qkvAdapters(layer, adapters);
    if (qkv !== undefined) {
      const d = this.config.hiddenSize;
      let lowRank = null;
      if (qkv) {
        const b = qkv.adapters[0].blockRank;
        loraDownPlanes(ctx, ln1, qkv.a, acts.qkvLoraU!, { dIn: d, b }, dropoutFor(qkv.adapters[0], options));
        lowRank = loraUpPlanes(acts.qkvLoraU!, qkv.bSum, { dOut: d, b }, qkv.adapters[0].scale);
      }
      linearForwardPlanes(ctx, ln1, w.qkv.weight, w.qkv.bias, acts.qkv, { out: d, in: d }, { lowRank, arithmetic });
    } else {
      QKV.forEach((matrix, i) => linear(matrix, w.self_attn[matrix], ln1, [acts.q, acts.k, acts.v][i]));
    }
    attentionForward(ctx, acts.q, acts.k, acts.v, acts.attn, acts.probs, this.attentionShape(shape), { arithmetic });
    linear('out_proj', w.self_attn.out_proj, acts.attn, attnOut);
    add(ctx, input, attnOut, acts.mid);
    layerNormForward(ctx, acts.mid, w.layer_norm2.weight, w.layer_norm2.bias, ln2, acts.mean2, acts.rstd2, eps);
    linear('fc1', w.mlp.fc1, ln2, acts.fc1);
    activationForward(ctx, this.activation, acts.fc1, gelu);
    linear('fc2', w.mlp.fc2, gelu, fc2);
    add(ctx, acts.mid, fc2, output);
  }

  /**
   * Backward of forwardLayer to its input and to the adapters (frozen weights get no gradient).
   * `dOutput` is overwritten (it serves as the residual gradient at the layer's middle).
   * Adapter gradients accumulate into adapter.gradA / gradBlocks.
   */
  backwardLayer(
    layer: number,
    input: Tensor,
    acts: LayerActivations,
    dOutput: Tensor,
    dInput: Tensor,
    scratch: BackwardScratch,
    shape: EncoderShape,
    adapters: ModelAdapters | null,
    options: ForwardOptions,
  ): void {
    const { ctx, arithmetic } = this;
    const w = this.layers[layer];
    // A linear layer's adapter gradients, then its dx with the adapter's share added by the matmul.
    const linearBackward = (
      matrix: TargetMatrix,
      weights: Linear,
      x: Tensor,
      dy: Tensor,
      dx: Tensor,
      accumulate: boolean,
    ) => {
      const adapter = adapters?.get(this.tower, layer, matrix);
      let lowRank = null;
      if (adapter) {
        const du = scratch.du.get(adapter.blockRank)!;
        const dropout = dropoutFor(adapter, options);
        loraBackward(
          ctx,
          dy,
          x,
          acts.loraU.get(matrix)!,
          adapter.a,
          adapter.bSum,
          du,
          adapter.gradA!,
          adapter.gradBlocks!,
          adapter.scale,
          dropout,
          { accumulate: true },
        );
        lowRank = loraInputGradient(du, adapter.a, dropout);
      }
      linearBackwardInput(ctx, dy, weights.weight, dx, { accumulate, lowRank, arithmetic });
    };
    const dMid = dOutput; // the residual passes dOutput through unchanged
    // MLP: output = mid + fc2(act(fc1(LN2(mid))))
    const { gelu, ln1, ln2 } = acts.transient;
    const eps = this.config.layerNormEps;
    const adapted = (matrix: TargetMatrix) => adapters?.get(this.tower, layer, matrix) !== undefined;
    // Adapters need their inputs, which the forward did not keep: recompute them (bit-identical).
    if (adapted('fc2')) activationForward(ctx, this.activation, acts.fc1, gelu);
    if (adapted('fc1'))
      layerNormForward(ctx, acts.mid, w.layer_norm2.weight, w.layer_norm2.bias, ln2, acts.mean2, acts.rstd2, eps);
    linearBackward('fc2', w.mlp.fc2, gelu, dOutput, scratch.dHidden, false);
    activationBackward(ctx, this.activation, acts.fc1, scratch.dHidden, scratch.dHidden2);
    linearBackward('fc1', w.mlp.fc1, ln2, scratch.dHidden2, scratch.dNorm, false);
    layerNormBackward(ctx, scratch.dNorm, acts.mid, w.layer_norm2.weight, acts.mean2, acts.rstd2, dMid, {
      accumulate: true,
    });
    // Attention: mid = input + out_proj(attention(q, k, v)), q/k/v = projections of LN1(input)
    linearBackward('out_proj', w.self_attn.out_proj, acts.attn, dMid, scratch.dAttn, false);
    attentionBackward(
      ctx,
      scratch.dAttn,
      acts.q,
      acts.k,
      acts.v,
      acts.probs,
      scratch.dq,
      scratch.dk,
      scratch.dv,
      this.attentionShape(shape),
      this.attentionScratch,
      { arithmetic },
    );
    if (adapted('q_proj') || adapted('k_proj') || adapted('v_proj')) {
      layerNormForward(ctx, input, w.layer_norm1.weight, w.layer_norm1.bias, ln1, acts.mean1, acts.rstd1, eps);
    }
    // dx of q, k and v as one product, with their adapters' shares (each adapter's gradients first).
    const qkv = this.qkvAdapters(layer, adapters);
    if (qkv !== undefined) {
      const d = this.config.hiddenSize;
      let lowRank = null;
      if (qkv) {
        const b = qkv.adapters[0].blockRank;
        const dy = [scratch.dq, scratch.dk, scratch.dv];
        qkv.adapters.forEach((adapter, i) => {
          const du = planeSlice(scratch.qkvDu!, i, [dy[i].size / d, b]);
          loraBackward(
            ctx,
            dy[i],
            ln1,
            acts.loraU.get(QKV[i])!,
            adapter.a,
            adapter.bSum,
            du,
            adapter.gradA!,
            adapter.gradBlocks!,
            adapter.scale,
            dropoutFor(adapter, options),
            { accumulate: true },
          );
        });
        lowRank = loraInputGradientPlanes(scratch.qkvDu!, qkv.a, { dIn: d, b }, dropoutFor(qkv.adapters[0], options));
      }
      linearBackwardInputPlanes(
        ctx,
        scratch.dqkv,
        w.qkv.weight,
        scratch.dNorm,
        { out: d, in: d },
        { lowRank, arithmetic },
      );
    } else {
      linearBackward('q_proj', w.self_attn.q_proj, ln1, scratch.dq, scratch.dNorm, false);
      linearBackward('k_proj', w.self_attn.k_proj, ln1, scratch.dk, scratch.dNorm, true);
      linearBackward('v_proj', w.self_attn.v_proj, ln1, scratch.dv, scratch.dNorm, true);
    }
    ctx.copy(dMid, dInput);
    layerNormBackward(ctx, scratch.dNorm, input, w.layer_norm1.weight, acts.mean1, acts.rstd1, dInput, {
      accumulate: true,
    });
  }

  /**
   * q, k and v's adapters with their A_s and sums of blocks as planes, for the products that run the
   * three at once; null when none of the three is adapted (one product too); undefined when only some
   * are, or their parameters do not lie evenly spaced: then each runs alone.
   */
  private qkvAdapters(
    layer: number,
    adapters: ModelAdapters | null,
  ): { adapters: LinearAdapter[]; a: Planes; bSum: Planes } | null | undefined {
    const found = QKV.map((matrix) => adapters?.get(this.tower, layer, matrix));
    if (found.every((adapter) => !adapter)) return null;
    if (!found.every((adapter) => adapter)) return undefined;
    const all = found as LinearAdapter[];
    const a = adapters!.planes(all, 'a');
    const bSum = adapters!.planes(all, 'bSum');
    return a && bSum ? { adapters: all, a, bSum } : undefined;
  }

  allocateScratch(shape: EncoderShape, adapters: ModelAdapters | null): BackwardScratch {
    const { ctx } = this;
    const rows = shape.batch * shape.seqLen;
    const d = this.config.hiddenSize;
    const label = (name: string) => `${this.tower}.backward.${name}`;
    const du = new Map<number, Tensor>();
    for (const adapter of adapters?.adapters ?? []) {
      if (!du.has(adapter.blockRank))
        du.set(adapter.blockRank, ctx.tensor([rows, adapter.blockRank], label(`lora_du_${adapter.blockRank}`)));
    }
    // Room for q, k and v's du at once, for the dx product of the three with their adapters.
    const qkvAdapted =
      adapters !== null &&
      adapters.adapters.length > 0 &&
      QKV.every((matrix) => adapters.settings.targets.includes(matrix));
    const dqkv = planesOf(ctx, [rows, d], label('dqkv'));
    const [dq, dk, dv] = QKV.map((_, i) => planeSlice(dqkv, i, [rows, d], label(['dq', 'dk', 'dv'][i])));
    return {
      dHidden: ctx.tensor([rows, this.config.intermediateSize], label('d_gelu')),
      dHidden2: ctx.tensor([rows, this.config.intermediateSize], label('d_fc1')),
      dNorm: ctx.tensor([rows, d], label('d_layer_norm')),
      dAttn: ctx.tensor([rows, d], label('d_attention')),
      dqkv,
      dq,
      dk,
      dv,
      du,
      qkvDu: qkvAdapted
        ? planesOf(ctx, [rows, adapters.settings.rank / adapters.settings.blocks], label('qkv.lora_du'))
        : null,
    };
  }
}

export interface BackwardScratch {
  dHidden: Tensor;
  dHidden2: Tensor;
  dNorm: Tensor;
  dAttn: Tensor;
  /** dq, dk and dv: the planes of one tensor, which one product reads. */
  dqkv: Planes;
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  /** du = s g bSum, one scratch per block rank. */
  du: Map<number, Tensor>;
  /** q, k and v's du at once, when the adapters' targets include all three. */
  qkvDu: Planes | null;
}

/** Destroys the tensors of an activation or scratch record (not the shared transient set it points to). */
export function destroyTensors(record: LayerActivations | BackwardScratch | TransientActivations): void {
  for (const [key, value] of Object.entries(record)) {
    if (key === 'transient' || value === null) continue;
    if (value instanceof Map) value.forEach((t: Tensor) => t.destroy());
    else if (value instanceof Tensor)
      value.destroy(); // a slice of planes destroys nothing
    else (value as Planes).tensor.destroy();
  }
}

/** Three planes of `shape` in one tensor (q, k, v), each starting where a slice may. */
function planesOf(ctx: GpuContext, shape: readonly number[], label: string): Planes {
  const stride = sliceAlignedElements(shape.reduce((a, b) => a * b, 1));
  return { tensor: ctx.tensor([QKV.length * stride], label), stride, count: QKV.length };
}

function planeSlice(
  planes: Planes,
  plane: number,
  shape: readonly number[],
  label = `${planes.tensor.label}[${plane}]`,
): Tensor {
  return planes.tensor.slice(plane * planes.stride, shape, label);
}
