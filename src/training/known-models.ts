// The CLIP checkpoints on the Hugging Face Hub that octoclip offers by name, with their exact config.json
// sizes, download size and planned training memory: the studio's model list, the full-size checks and the
// bench's planner rows all read them here.

import { defaultAdapterSettings } from '../adapters/settings';
import { DEFAULT_HUB_MODEL } from '../common/hub-repo';
import { expectedTensors, parseClipConfig, VIT_B_32_CONFIG, type ClipConfig } from '../model/config';
import { planTrainingMemory } from './memory-plan';

export interface KnownClipModel {
  /** The Hub repo id. */
  repo: string;
  /** A short name, as papers call it. */
  name: string;
  /** What sets it apart, for the studio's list. */
  note: string;
  /** The repo's config.json (the fields that matter). */
  config: object;
}

const OPENAI_TEXT = VIT_B_32_CONFIG.text_config;
const OPENAI_VISION = VIT_B_32_CONFIG.vision_config;

/** openai/clip-vit-large-patch14: a 24-layer, 1024-wide vision tower on 14 px patches, a 768-wide text tower. */
const VIT_L_14_CONFIG = {
  ...VIT_B_32_CONFIG,
  projection_dim: 768,
  text_config: {
    ...OPENAI_TEXT,
    hidden_size: 768,
    intermediate_size: 3072,
    num_attention_heads: 12,
    projection_dim: 768,
  },
  vision_config: {
    ...OPENAI_VISION,
    hidden_size: 1024,
    intermediate_size: 4096,
    num_attention_heads: 16,
    num_hidden_layers: 24,
    patch_size: 14,
    projection_dim: 768,
  },
};

/** LAION's OpenCLIP conversions: OpenAI's layouts with the exact (erf) GELU in both towers. */
function laion<T extends typeof VIT_B_32_CONFIG | typeof VIT_L_14_CONFIG>(config: T): object {
  return {
    ...config,
    text_config: { ...config.text_config, hidden_act: 'gelu' },
    vision_config: { ...config.vision_config, hidden_act: 'gelu' },
  };
}

export const KNOWN_CLIP_MODELS: readonly KnownClipModel[] = [
  { repo: DEFAULT_HUB_MODEL, name: 'ViT-B/32', note: 'the default, fastest to train', config: VIT_B_32_CONFIG },
  {
    repo: 'openai/clip-vit-base-patch16',
    name: 'ViT-B/16',
    note: 'more accurate, about 4x the compute',
    config: { ...VIT_B_32_CONFIG, vision_config: { ...OPENAI_VISION, patch_size: 16 } },
  },
  {
    repo: 'openai/clip-vit-large-patch14',
    name: 'ViT-L/14',
    note: '257 image tokens, about 15x ViT-B/32’s compute',
    config: VIT_L_14_CONFIG,
  },
  {
    repo: 'openai/clip-vit-large-patch14-336',
    name: 'ViT-L/14-336',
    note: '336 px images, 577 image tokens',
    config: { ...VIT_L_14_CONFIG, vision_config: { ...VIT_L_14_CONFIG.vision_config, image_size: 336 } },
  },
  {
    repo: 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K',
    name: 'LAION ViT-B/32',
    note: 'trained on LAION-2B, GELU',
    config: laion(VIT_B_32_CONFIG),
  },
  {
    repo: 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K',
    name: 'LAION ViT-L/14',
    note: 'trained on LAION-2B, GELU',
    config: laion(VIT_L_14_CONFIG),
  },
];

export function knownClipModel(repo: string): KnownClipModel | undefined {
  return KNOWN_CLIP_MODELS.find((model) => model.repo === repo);
}

export function knownClipConfig(model: KnownClipModel): ClipConfig {
  return parseClipConfig(model.config, `${model.repo}/config.json`);
}

/** Parameters of every tensor the model reads. */
export function parameterCount(config: ClipConfig): number {
  let total = 0;
  for (const shape of expectedTensors(config).values()) total += shape.reduce((a, b) => a * b, 1);
  return total;
}

/** The Hub's model.safetensors for these repos stores F32: 4 bytes a parameter (plus a header of tens of KB). */
export function downloadBytes(config: ClipConfig): number {
  return 4 * parameterCount(config);
}

/** The run the model list and the bench's planner rows quote: CLIP-LoRA's recipe (batch 32, Block-LoRA on q, k, v of both towers) on 10 classes. */
export const REFERENCE_RUN = { batchSize: 32, classes: 10, textChunk: 64 } as const;

/** Planned peak GPU bytes of the reference run in micro-batches of `microBatchSize` (the planner's figure, not a measurement). */
export async function plannedTrainingBytes(
  config: ClipConfig,
  microBatchSize: number = REFERENCE_RUN.batchSize,
): Promise<number> {
  return (
    await planTrainingMemory(config, { ...REFERENCE_RUN, microBatchSize, adapter: defaultAdapterSettings(config) })
  ).peakBytes;
}
