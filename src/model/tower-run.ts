// One pass of a tower's encoder: the residual stream, each layer's saved activations when recording
// for backward, and the backward itself. Inference keeps one set of activations and two residual
// buffers; training keeps every layer's (what backward needs; quick_gelu is recomputed).

import type { ModelAdapters } from './adapter';
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import {
  destroyTensors,
  type ClipEncoder,
  type EncoderShape,
  type ForwardOptions,
  type LayerActivations,
} from './encoder';

/** Small tensors of a tower's pooling head that its backward needs. */
export interface PoolingHead {
  rows: Tensor;
  pooled: Tensor;
  mean: Tensor;
  rstd: Tensor;
}

export class TowerRun {
  features: Tensor | null = null;
  head: PoolingHead | null = null;
  private readonly hiddens: Tensor[];
  private readonly activations: LayerActivations[];
  private readonly transient;
  private dLast: Tensor | null = null;
  private readonly record: boolean;

  constructor(
    private readonly ctx: GpuContext,
    private readonly encoder: ClipEncoder,
    readonly shape: EncoderShape,
    private readonly adapters: ModelAdapters | null,
    private readonly options: ForwardOptions & { record: boolean },
  ) {
    this.record = options.record;
    const rows = shape.batch * shape.seqLen;
    const d = encoder.config.hiddenSize;
    const layers = encoder.config.numLayers;
    const residuals = this.record ? layers + 1 : Math.min(2, layers + 1);
    this.hiddens = Array.from({ length: residuals }, (_, i) =>
      ctx.tensor([rows, d], `${encoder.tower}.hidden_states.${i}`),
    );
    this.transient = encoder.allocateTransient(shape);
    const perLayer = this.record ? layers : 1;
    this.activations = Array.from({ length: perLayer }, (_, i) =>
      encoder.allocateActivations(shape, this.record ? i : 'every', adapters, this.transient),
    );
  }

  /** The encoder's input (the embeddings after any pre-norm are written here). */
  get hiddenInput(): Tensor {
    return this.hiddens[0];
  }

  /** Runs every encoder layer; returns the last hidden state [batch * seqLen, d]. */
  runEncoder(): Tensor {
    const layers = this.encoder.config.numLayers;
    for (let i = 0; i < layers; i++) {
      const input = this.hidden(i);
      const output = this.hidden(i + 1);
      const acts = this.record ? this.activations[i] : this.activations[0];
      this.encoder.forwardLayer(i, input, output, acts, this.shape, this.adapters, this.options);
    }
    return this.hidden(layers);
  }

  /** Stores the tower's output; without recording, frees everything else now. */
  finish(features: Tensor, head: PoolingHead, temporaries: Tensor[]): void {
    this.features = features;
    temporaries.forEach((t) => t.destroy());
    if (this.record) this.head = head;
    else {
      Object.values(head).forEach((t: Tensor) => t.destroy());
      this.releaseActivations();
    }
  }

  /** Gradient buffer of the last hidden state, for the head's backward to write into. */
  gradientOfLast(): Tensor {
    if (!this.record) throw new Error('backward needs a forward run with record: true');
    this.dLast ??= this.ctx.tensor(
      this.hidden(this.encoder.config.numLayers).shape,
      `${this.encoder.tower}.d_hidden_last`,
    );
    return this.dLast;
  }

  /** Back through every layer from gradientOfLast(), accumulating adapter gradients; then frees the run's activations. */
  backwardEncoder(): void {
    const layers = this.encoder.config.numLayers;
    const scratch = this.encoder.allocateScratch(this.shape, this.adapters);
    let dOutput = this.gradientOfLast();
    let dInput = this.ctx.tensor(dOutput.shape, `${this.encoder.tower}.d_hidden`);
    // Layers without adapters below the lowest adapted one need no backward.
    const lowest = this.lowestAdaptedLayer();
    for (let i = layers - 1; i >= lowest; i--) {
      this.encoder.backwardLayer(
        i,
        this.hidden(i),
        this.activations[i],
        dOutput,
        dInput,
        scratch,
        this.shape,
        this.adapters,
        this.options,
      );
      [dOutput, dInput] = [dInput, dOutput];
    }
    destroyTensors(scratch);
    dOutput.destroy();
    dInput.destroy();
    this.dLast = null;
    if (this.head) Object.values(this.head).forEach((t: Tensor) => t.destroy());
    this.head = null;
    this.releaseActivations();
  }

  /** Frees everything but the features (which the caller owns). */
  destroy(): void {
    this.dLast?.destroy();
    this.dLast = null;
    if (this.head) Object.values(this.head).forEach((t: Tensor) => t.destroy());
    this.head = null;
    this.releaseActivations();
  }

  private hidden(index: number): Tensor {
    return this.record ? this.hiddens[index] : this.hiddens[index % this.hiddens.length];
  }

  private lowestAdaptedLayer(): number {
    const layers = this.adapters?.settings.layers[this.encoder.tower] ?? [];
    return layers.length && this.adapters!.settings.targets.length
      ? Math.min(...layers)
      : this.encoder.config.numLayers;
  }

  private releaseActivations(): void {
    this.activations.splice(0).forEach(destroyTensors);
    destroyTensors(this.transient);
    this.hiddens.splice(0).forEach((t) => t.destroy());
  }
}
