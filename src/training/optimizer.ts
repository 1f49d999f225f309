// The optimizer of an adapter set: AdamW (as torch.optim.AdamW) or plain SGD over every adapter
// parameter at once, in the set's flat layout, then the block sums the next step reads.

import type { AdapterSet } from '../adapters/block-lora';
import type { TrainSettings } from '../common/recipe';
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { adamwUpdate, sgdUpdate } from '../kernels/adamw';

export type OptimizerSettings = Pick<TrainSettings, 'optimizer' | 'beta1' | 'beta2' | 'eps' | 'weightDecay'>;

export class AdapterOptimizer {
  /** AdamW's moments, in the adapters' flat layout (AdapterSet.slicesOf names their parts); null for SGD. */
  private readonly moments: { m: Tensor; v: Tensor } | null;

  constructor(
    private readonly ctx: GpuContext,
    private readonly adapters: AdapterSet,
    private readonly settings: OptimizerSettings,
  ) {
    this.moments =
      settings.optimizer === 'adamw' ? { m: adapters.flatLike('adam_m'), v: adapters.flatLike('adam_v') } : null;
  }

  /** Update number `step` (from 1) at learning rate `lr`, from the gradients the adapters hold. */
  update(lr: number, step: number): void {
    const { ctx, adapters, settings: s } = this;
    // One command over every adapter parameter at once (the flat layout's padding stays zero).
    const parameters = adapters.flatParameters;
    const gradients = adapters.flatGradients!;
    if (!this.moments) sgdUpdate(ctx, parameters, gradients, lr);
    else {
      const { m, v } = this.moments;
      adamwUpdate(ctx, parameters, gradients, m, v, {
        lr,
        beta1: s.beta1,
        beta2: s.beta2,
        eps: s.eps,
        weightDecay: s.weightDecay,
        step,
      });
    }
    adapters.refreshSums();
  }

  /** The moments of every parameter by name (`<parameter>.adam_m` and `.adam_v`), for checkpoints. */
  namedState(): { name: string; tensor: Tensor }[] {
    if (!this.moments) return [];
    return [...this.adapters.slicesOf(this.moments.m, '.adam_m'), ...this.adapters.slicesOf(this.moments.v, '.adam_v')];
  }

  destroy(): void {
    this.moments?.m.destroy();
    this.moments?.v.destroy();
  }
}
