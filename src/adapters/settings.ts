// Block-LoRA settings (docs/block-lora.md): where adapters go, their rank, blocks and scaling,
// and the sizes they imply; the defaults are CLIP-LoRA's recipe (src/common/recipe.ts). Plain data and
// arithmetic, no GPU: the studio's page, the adapter files and the memory planner use it too.

import {
  definedOnly,
  LORA_BLOCKS,
  RECIPE_ADAPTER,
  TARGET_MATRICES,
  TOWERS,
  type AdapterChoice,
  type ScalingRule,
  type TargetMatrix,
  type Tower,
} from '../common/recipe';
import type { ClipConfig } from '../model/config';

export { TARGET_MATRICES, type ScalingRule, type TargetMatrix, type Tower } from '../common/recipe';

export interface AdapterSettings extends Omit<AdapterChoice, 'towers'> {
  /** Layer indices per tower; an absent tower carries no adapters. */
  layers: Partial<Record<Tower, number[]>>;
}

/** CLIP-LoRA's recipe (src/common/recipe.ts) on every layer of this model's towers, with the overrides given. */
export function defaultAdapterSettings(config: ClipConfig, overrides: Partial<AdapterSettings> = {}): AdapterSettings {
  const { towers, ...recipe } = RECIPE_ADAPTER;
  const settings: AdapterSettings = {
    ...recipe,
    targets: [...recipe.targets],
    layers: allLayers(config, towers),
    ...definedOnly(overrides),
  };
  if (settings.method === 'lora' && overrides.blocks === undefined) settings.blocks = LORA_BLOCKS;
  validateAdapterSettings(settings, config);
  return settings;
}

/** Every layer of each of these towers. */
export function allLayers(config: ClipConfig, towers: readonly Tower[]): AdapterSettings['layers'] {
  return Object.fromEntries(
    towers.map((tower) => [tower, Array.from({ length: config[tower].numLayers }, (_, i) => i)]),
  );
}

export function validateAdapterSettings(settings: AdapterSettings, config: ClipConfig): void {
  const { rank, blocks } = settings;
  if (!Number.isInteger(rank) || rank < 1) throw new RangeError(`rank must be a positive integer, got ${rank}`);
  if (!Number.isInteger(blocks) || blocks < 1 || rank % blocks !== 0) {
    throw new RangeError(`blocks (n = ${blocks}) must divide the rank (r = ${rank})`);
  }
  if (settings.method === 'lora' && blocks !== LORA_BLOCKS)
    throw new RangeError(`LoRA is Block-LoRA with one block: use blocks = ${LORA_BLOCKS}`);
  if (!(settings.dropout >= 0 && settings.dropout < 1))
    throw new RangeError(`dropout must be in [0, 1), got ${settings.dropout}`);
  for (const target of settings.targets) {
    if (!TARGET_MATRICES.includes(target)) throw new RangeError(`unknown target matrix ${target}`);
  }
  for (const tower of TOWERS) {
    for (const layer of settings.layers[tower] ?? []) {
      if (!Number.isInteger(layer) || layer < 0 || layer >= config[tower].numLayers) {
        throw new RangeError(`${tower} layer ${layer} does not exist (the model has ${config[tower].numLayers})`);
      }
    }
  }
}

/** s in delta W = s (sum_i B_i) A_s. */
export function scalingFor(rule: ScalingRule, alpha: number, rank: number): number {
  return rule === 'alpha/sqrt(r)' ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** The frozen layer an adapter sits on, by its checkpoint name. */
export function layerPath(tower: Tower, layer: number, matrix: TargetMatrix): string {
  const module = matrix === 'fc1' || matrix === 'fc2' ? `mlp.${matrix}` : `self_attn.${matrix}`;
  return `${tower}_model.encoder.layers.${layer}.${module}`;
}

export function matrixShape(config: ClipConfig, tower: Tower, matrix: TargetMatrix): { dIn: number; dOut: number } {
  const { hiddenSize, intermediateSize } = config[tower];
  if (matrix === 'fc1') return { dIn: hiddenSize, dOut: intermediateSize };
  if (matrix === 'fc2') return { dIn: intermediateSize, dOut: hiddenSize };
  return { dIn: hiddenSize, dOut: hiddenSize };
}

/** Trainable parameters per adapted matrix: d_out*r + (r/n)*d_in (LoRA: d_out*r + r*d_in). */
export function trainableParameterCount(config: ClipConfig, settings: AdapterSettings): number {
  let total = 0;
  for (const tower of TOWERS) {
    const layers = settings.layers[tower]?.length ?? 0;
    for (const matrix of settings.targets) {
      const { dIn, dOut } = matrixShape(config, tower, matrix);
      total += layers * (dOut * settings.rank + (settings.rank / settings.blocks) * dIn);
    }
  }
  return total;
}

/** One adapted matrix and where its parameters sit in the adapter set's flat buffers. */
export interface AdaptedMatrix {
  tower: Tower;
  layer: number;
  matrix: TargetMatrix;
  path: string;
  dIn: number;
  dOut: number;
  /** Element offsets of A_s [r/n, d_in] and of the blocks [n, d_out, r/n] in the flat parameters. */
  aOffset: number;
  blocksOffset: number;
  /** Element offset of sum_i B_i [d_out, r/n] in the flat block sums (kept when n > 1). */
  sumOffset: number;
}

/**
 * Every adapter parameter lives in one flat buffer (and so do its gradients and optimizer moments), and
 * every sum of blocks in another, so that zeroing the gradients, the optimizer step and the block sums
 * are one command each instead of one per tensor. Each tensor starts at a multiple of 64 elements (256
 * bytes, where any WebGPU adapter can bind a slice). The order is text then vision tower, layers,
 * targets: the adapter file's.
 */
export function adapterLayout(
  config: ClipConfig,
  settings: AdapterSettings,
): { matrices: AdaptedMatrix[]; elements: number; sumElements: number } {
  const blockRank = settings.rank / settings.blocks;
  const aligned = (elements: number) => Math.ceil(elements / FLAT_ALIGNMENT_ELEMENTS) * FLAT_ALIGNMENT_ELEMENTS;
  const matrices: AdaptedMatrix[] = [];
  let elements = 0;
  let sumElements = 0;
  for (const tower of TOWERS) {
    for (const layer of settings.layers[tower] ?? []) {
      for (const matrix of settings.targets) {
        const { dIn, dOut } = matrixShape(config, tower, matrix);
        const aOffset = elements;
        const blocksOffset = aOffset + aligned(blockRank * dIn);
        const sumOffset = sumElements;
        elements = blocksOffset + aligned(settings.blocks * dOut * blockRank);
        sumElements = sumOffset + aligned(dOut * blockRank);
        matrices.push({
          tower,
          layer,
          matrix,
          path: layerPath(tower, layer, matrix),
          dIn,
          dOut,
          aOffset,
          blocksOffset,
          sumOffset,
        });
      }
    }
  }
  return { matrices, elements, sumElements };
}

/** SLICE_ALIGNMENT_BYTES of src/gpu/tensor.ts in f32 elements. */
const FLAT_ALIGNMENT_ELEMENTS = 64;
