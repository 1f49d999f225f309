// What the CLIP towers need of the low-rank adapters on their linear layers: for each adapted matrix, its
// tensors, scaling and dropout. src/adapters implements it (Block-LoRA, and LoRA as n = 1); the model only
// runs adapters, so the dependency points from adapters/ to model/ and never back.

import type { Tower, TargetMatrix } from '../common/recipe';
import type { Tensor } from '../gpu/tensor';
import type { Planes } from '../kernels/matmul';

/** The adapter of one frozen linear layer h = W0 x + b: h += scale * bSum (A_s drop(x)). */
export interface LinearAdapter {
  /** The frozen layer's checkpoint name (`vision_model.encoder.layers.0.self_attn.q_proj`). */
  readonly path: string;
  /** Position among the model's adapters: decorrelates dropout masks between matrices. */
  readonly index: number;
  /** The shared down-projection A_s [r/n, d_in]. */
  readonly a: Tensor;
  /** sum_i B_i [d_out, r/n]. */
  readonly bSum: Tensor;
  readonly scale: number;
  /** Dropout probability on the adapter's input, while training. */
  readonly dropout: number;
  /** r/n, the rows of A_s. */
  readonly blockRank: number;
  /** Gradients of A_s and of the blocks, allocated only for training. */
  readonly gradA: Tensor | null;
  readonly gradBlocks: Tensor | null;
}

/** Every adapter of a model, by the frozen layer it sits on. */
export interface ModelAdapters {
  readonly settings: {
    readonly rank: number;
    readonly blocks: number;
    readonly targets: readonly TargetMatrix[];
    readonly layers: Partial<Record<Tower, number[]>>;
  };
  readonly adapters: readonly LinearAdapter[];
  get(tower: Tower, layer: number, matrix: TargetMatrix): LinearAdapter | undefined;
  /** True when the tower has at least one adapted matrix. */
  hasTower(tower: Tower): boolean;
  /**
   * The A_s (or sums of blocks) of several adapters as planes of one tensor, when they lie evenly spaced in
   * memory, so that one product runs them all (q, k and v); null otherwise.
   */
  planes(adapters: readonly LinearAdapter[], which: 'a' | 'bSum'): Planes | null;
}
