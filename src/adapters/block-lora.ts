// Block-LoRA adapters on CLIP's linear layers (docs/block-lora.md): for a frozen
// h = W0 x + b, h += s * (B_1 + ... + B_n) (A_s x). Plain LoRA is the n = 1 case.

import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { BlockSumTable, sumBlocks } from '../kernels/block_lora';
import { matmul, type Planes } from '../kernels/matmul';
import type { ClipConfig } from '../model/config';
import type { LinearAdapter, ModelAdapters } from '../model/adapter';
import type { ClipWeights } from '../model/weights';
import {
  adapterLayout,
  layerPath,
  scalingFor,
  validateAdapterSettings,
  type AdaptedMatrix,
  type AdapterSettings,
  type TargetMatrix,
  type Tower,
} from './settings';

/** One adapted matrix: the shared down-projection A_s [r/n, d_in] and the n up-projection blocks [n, d_out, r/n]. */
export class BlockLoraAdapter implements LinearAdapter {
  /** Gradients, allocated only for training. */
  gradA: Tensor | null = null;
  gradBlocks: Tensor | null = null;

  constructor(
    readonly path: string,
    /** Position among the model's adapters: decorrelates dropout masks between matrices. */
    readonly index: number,
    readonly a: Tensor,
    readonly blocks: Tensor,
    /** sum_i B_i [d_out, r/n], refreshed once per step (n - 1 additions) in the set's flat block sums; a view of B when n = 1. */
    readonly bSum: Tensor,
    readonly scale: number,
    readonly dropout: number,
  ) {}

  get blockRank(): number {
    return this.a.shape[0];
  }

  get parameterCount(): number {
    return this.a.size + this.blocks.size;
  }
}

/**
 * Every adapter of a model, keyed by the frozen layer it sits on. Their parameters are slices of one
 * flat tensor, and so are their gradients and their sums of blocks (adapterLayout), so that zeroing
 * the gradients, the optimizer step and refreshing the sums are one command each.
 */
export class AdapterSet implements ModelAdapters {
  private readonly byPath = new Map<string, BlockLoraAdapter>();
  readonly scale: number;
  /** Every A_s and B of every adapter, in adapterLayout's order. */
  readonly flatParameters: Tensor;
  /** Their gradients, in the same layout; allocated for training. */
  flatGradients: Tensor | null = null;
  /** Every sum_i B_i, and where each sits, when n > 1 (with n = 1 the sum is B itself). */
  private readonly blockSums: { flat: Tensor; table: BlockSumTable } | null = null;

  private constructor(
    private readonly ctx: GpuContext,
    readonly settings: AdapterSettings,
    private readonly matrices: readonly AdaptedMatrix[],
    { elements, sumElements }: { elements: number; sumElements: number },
    data: Float32Array,
  ) {
    this.scale = scalingFor(settings.scalingRule, settings.alpha, settings.rank);
    this.flatParameters = ctx.tensor([elements], 'adapters', data);
    if (settings.blocks > 1 && matrices.length > 0) {
      const blockRank = settings.rank / settings.blocks;
      const placements = matrices.map(({ dOut, blocksOffset, sumOffset }) => ({
        blocksOffset,
        sumOffset,
        blockSize: dOut * blockRank,
      }));
      this.blockSums = {
        flat: ctx.tensor([sumElements], 'adapter block sums'),
        table: new BlockSumTable(ctx, placements, settings.blocks),
      };
    }
  }

  /**
   * Creates the adapters. `initial` gives A_s and B values by tensor name
   * (`<layer path>.block_lora_A` / `.block_lora_B`); otherwise A_s is Kaiming-uniform (a = sqrt(5), as
   * torch's nn.Linear default: bound 1/sqrt(d_in)) from `random`, and every B_i is zero, so the adapted
   * model starts exactly at the pretrained one.
   */
  static create(
    ctx: GpuContext,
    config: ClipConfig,
    settings: AdapterSettings,
    init: { random: () => number } | { initial: Map<string, Float32Array> },
  ): AdapterSet {
    validateAdapterSettings(settings, config);
    const blockRank = settings.rank / settings.blocks;
    const layout = adapterLayout(config, settings);
    const { matrices } = layout;
    const data = new Float32Array(layout.elements);
    for (const { path, dIn, dOut, aOffset, blocksOffset } of matrices) {
      if ('initial' in init) {
        data.set(requireInitial(init.initial, `${path}.block_lora_A`, blockRank * dIn), aOffset);
        data.set(
          requireInitial(init.initial, `${path}.block_lora_B`, settings.blocks * dOut * blockRank),
          blocksOffset,
        );
      } else {
        const bound = 1 / Math.sqrt(dIn);
        for (let i = 0; i < blockRank * dIn; i++) data[aOffset + i] = (2 * init.random() - 1) * bound;
      }
    }
    const set = new AdapterSet(ctx, settings, matrices, layout, data);
    for (const [index, matrix] of matrices.entries()) {
      const { path, dOut, sumOffset } = matrix;
      const { a, blocks } = set.sliceMatrix(set.flatParameters, matrix, '');
      const bSum = set.blockSums
        ? set.blockSums.flat.slice(sumOffset, [dOut, blockRank], `${path}.B_sum`)
        : blocks.view([dOut, blockRank], `${path}.B_sum`);
      set.byPath.set(path, new BlockLoraAdapter(path, index, a, blocks, bSum, set.scale, settings.dropout));
    }
    set.refreshSums();
    return set;
  }

  get(tower: Tower, layer: number, matrix: TargetMatrix): BlockLoraAdapter | undefined {
    return this.byPath.get(layerPath(tower, layer, matrix));
  }

  get adapters(): BlockLoraAdapter[] {
    return [...this.byPath.values()];
  }

  hasTower(tower: Tower): boolean {
    return (this.settings.layers[tower]?.length ?? 0) > 0 && this.settings.targets.length > 0;
  }

  get parameterCount(): number {
    return this.adapters.reduce((total, adapter) => total + adapter.parameterCount, 0);
  }

  /**
   * The sums of blocks (bSum) or the down-projections (a) of `adapters` as planes of one tensor, for one
   * product that adds them all (q, k and v of a layer: linearForwardPlanes, linearBackwardInputPlanes),
   * when they lie evenly spaced in one flat buffer, as adapterLayout places a layer's targets one after
   * another; null otherwise.
   */
  planes(adapters: readonly LinearAdapter[], which: 'a' | 'bSum'): Planes | null {
    const tensors = adapters.map((adapter) => adapter[which]);
    const flat = which === 'bSum' && this.blockSums ? this.blockSums.flat : this.flatParameters;
    const offsets = tensors.map((tensor) => (tensor.byteOffset - flat.byteOffset) / 4);
    const size = tensors[0].size;
    const stride = tensors.length > 1 ? offsets[1] - offsets[0] : size;
    const evenlySpaced = tensors.every(
      (tensor, i) => tensor.buffer === flat.buffer && tensor.size === size && offsets[i] === offsets[0] + i * stride,
    );
    if (!evenlySpaced || stride < size) return null;
    return {
      tensor: flat.slice(offsets[0], [(tensors.length - 1) * stride + size], `${adapters[0].path}.${which} planes`),
      stride,
      count: tensors.length,
    };
  }

  /** Recomputes every sum_i B_i after the blocks changed (an optimizer step). */
  refreshSums(): void {
    if (this.blockSums) sumBlocks(this.ctx, this.flatParameters, this.blockSums.flat, this.blockSums.table);
  }

  /**
   * Folds the adapters into the frozen weights, W += s (sum_i B_i) A_s, so that inference runs at the
   * frozen model's cost with no adapter set passed. Undo with unmerge(); in f32 the round trip
   * restores W to within a few ulps (W + D - D), not bit for bit.
   */
  merge(weights: ClipWeights): void {
    this.addDeltas(weights, this.scale);
  }

  unmerge(weights: ClipWeights): void {
    this.addDeltas(weights, -this.scale);
  }

  private addDeltas(weights: ClipWeights, scale: number): void {
    for (const adapter of this.byPath.values()) {
      const weight = weights.get(`${adapter.path}.weight`);
      const [dOut, dIn] = weight.shape;
      matmul(this.ctx, adapter.bSum, adapter.a, weight, {
        m: dOut,
        n: dIn,
        k: adapter.blockRank,
        alpha: scale,
        accumulate: true,
      });
    }
  }

  /** Allocates zeroed gradients for training. */
  allocateGradients(): void {
    if (!this.flatGradients) {
      this.flatGradients = this.flatLike('adapter gradients');
      for (const [i, adapter] of this.adapters.entries()) {
        const { a, blocks } = this.sliceMatrix(this.flatGradients, this.matrices[i], '.grad');
        adapter.gradA = a;
        adapter.gradBlocks = blocks;
      }
    }
    this.zeroGradients();
  }

  zeroGradients(): void {
    if (this.flatGradients) this.ctx.zero(this.flatGradients);
  }

  /** A zeroed tensor in the flat parameters' layout (gradients, optimizer moments). */
  flatLike(label: string): Tensor {
    return this.ctx.tensor(this.flatParameters.shape, label);
  }

  /**
   * The parameters' places in a flat tensor of their layout, named as the parameters plus `suffix`
   * (`<layer path>.block_lora_A<suffix>`), in parameters() order.
   */
  slicesOf(flat: Tensor, suffix: string): { name: string; tensor: Tensor }[] {
    return this.matrices.flatMap((matrix) => {
      const { a, blocks } = this.sliceMatrix(flat, matrix, suffix);
      return [
        { name: a.label, tensor: a },
        { name: blocks.label, tensor: blocks },
      ];
    });
  }

  /** One adapted matrix's A_s and blocks inside a flat tensor of the parameters' layout, labelled with `suffix`. */
  private sliceMatrix(
    flat: Tensor,
    { path, dIn, dOut, aOffset, blocksOffset }: AdaptedMatrix,
    suffix: string,
  ): { a: Tensor; blocks: Tensor } {
    const blockRank = this.settings.rank / this.settings.blocks;
    return {
      a: flat.slice(aOffset, [blockRank, dIn], `${path}.block_lora_A${suffix}`),
      blocks: flat.slice(blocksOffset, [this.settings.blocks, dOut, blockRank], `${path}.block_lora_B${suffix}`),
    };
  }

  /** Parameters by tensor name, in a fixed order (the adapter file's order). */
  parameters(): { name: string; tensor: Tensor; grad: Tensor | null }[] {
    return this.adapters.flatMap((adapter) => [
      { name: `${adapter.path}.block_lora_A`, tensor: adapter.a, grad: adapter.gradA },
      { name: `${adapter.path}.block_lora_B`, tensor: adapter.blocks, grad: adapter.gradBlocks },
    ]);
  }

  destroy(): void {
    this.blockSums?.flat.destroy();
    this.blockSums?.table.destroy();
    this.flatParameters.destroy();
    this.flatGradients?.destroy();
    this.byPath.clear();
  }
}

function requireInitial(initial: Map<string, Float32Array>, name: string, size: number): Float32Array {
  const data = initial.get(name);
  if (!data) throw new RangeError(`initial adapter weights lack ${name}`);
  if (data.length !== size) throw new RangeError(`${name} has ${data.length} values, the settings imply ${size}`);
  return data;
}
