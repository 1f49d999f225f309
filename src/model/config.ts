// A Hugging Face CLIP config.json as typed sizes, the tensors those sizes imply, and the check that a
// checkpoint holds each of them with the right shape.

import type { Activation } from '../kernels/elementwise';
import { assertFloatDtype, ModelFileError, type SafetensorsHeader } from './safetensors';

/** The `hidden_act` values octoclip computes (transformers' names), and the kernel that computes each. */
export const HIDDEN_ACTIVATIONS = {
  quick_gelu: 'quick_gelu',
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
} as const satisfies Record<string, Activation>;

export type HiddenAct = keyof typeof HIDDEN_ACTIVATIONS;

/** What both towers' transformer encoders share. */
export interface TowerConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numLayers: number;
  layerNormEps: number;
  /** The MLP's activation: 'quick_gelu' for OpenAI's checkpoints, 'gelu' for LAION's. */
  hiddenAct: HiddenAct;
}

export interface TextConfig extends TowerConfig {
  vocabSize: number;
  maxPositions: number;
  /**
   * The end-of-text id the text tower pools at. Undefined when the config has none or transformers' legacy
   * placeholder 2 (OpenAI's checkpoints): then pool at the row's highest id, as transformers does for 2.
   * End-of-text is the last token of every CLIP vocabulary, so both rules find the same position.
   */
  eosTokenId?: number;
}

export interface VisionConfig extends TowerConfig {
  imageSize: number;
  patchSize: number;
}

export interface ClipConfig {
  projectionDim: number;
  /** The config's `logit_scale_init_value`; a trained checkpoint's own `logit_scale` tensor is what scores use. */
  logitScaleInit: number;
  text: TextConfig;
  vision: VisionConfig;
}

/**
 * transformers' CLIPConfig, CLIPTextConfig and CLIPVisionConfig defaults, for fields a config leaves out.
 * Not eos_token_id: its default 49407 fits only the full vocabulary, and pooling at the highest id is equivalent.
 */
const CLIP_DEFAULTS = { projection_dim: 512, logit_scale_init_value: 2.6592 };
const TEXT_DEFAULTS = {
  hidden_size: 512,
  intermediate_size: 2048,
  num_attention_heads: 8,
  num_hidden_layers: 12,
  vocab_size: 49408,
  max_position_embeddings: 77,
  layer_norm_eps: 1e-5,
  hidden_act: 'quick_gelu',
};
const VISION_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_attention_heads: 12,
  num_hidden_layers: 12,
  image_size: 224,
  patch_size: 32,
  layer_norm_eps: 1e-5,
  hidden_act: 'quick_gelu',
};

/**
 * The largest value octoclip accepts for each size field, far beyond any released CLIP (ViT-bigG/14: 48 layers,
 * width 1664, 257 positions): a larger one is a typo or a hostile file, refused before anything is allocated.
 */
export const CONFIG_LIMITS: Readonly<Record<string, number>> = {
  projection_dim: 8192,
  hidden_size: 8192,
  intermediate_size: 32768,
  num_attention_heads: 256,
  num_hidden_layers: 128,
  vocab_size: 1_000_000,
  max_position_embeddings: 4096,
  image_size: 2048,
  patch_size: 256,
};

/** At most this many image tokens (patches plus the class token): the attention scores grow with its square. */
export const MAX_VISION_TOKENS = 4097;

/** transformers' marker for configs written before it pooled by eos_token_id. */
const LEGACY_EOS_TOKEN_ID = 2;
const RGB_CHANNELS = 3;

/** openai/clip-vit-base-patch32's config.json, the fields that matter (the Hub's file also lists generation defaults). */
export const VIT_B_32_CONFIG = {
  architectures: ['CLIPModel'],
  initializer_factor: 1.0,
  logit_scale_init_value: 2.6592,
  model_type: 'clip',
  projection_dim: 512,
  text_config: {
    attention_dropout: 0.0,
    bos_token_id: 0,
    dropout: 0.0,
    eos_token_id: 2,
    hidden_act: 'quick_gelu',
    hidden_size: 512,
    initializer_factor: 1.0,
    initializer_range: 0.02,
    intermediate_size: 2048,
    layer_norm_eps: 1e-5,
    max_position_embeddings: 77,
    model_type: 'clip_text_model',
    num_attention_heads: 8,
    num_hidden_layers: 12,
    pad_token_id: 1,
    projection_dim: 512,
    vocab_size: 49408,
  },
  vision_config: {
    attention_dropout: 0.0,
    dropout: 0.0,
    hidden_act: 'quick_gelu',
    hidden_size: 768,
    image_size: 224,
    initializer_factor: 1.0,
    initializer_range: 0.02,
    intermediate_size: 3072,
    layer_norm_eps: 1e-5,
    model_type: 'clip_vision_model',
    num_attention_heads: 12,
    num_hidden_layers: 12,
    patch_size: 32,
    projection_dim: 512,
  },
} as const;

/** Parses config.json (its text or the parsed object) into sizes, with transformers' defaults for missing fields. */
export function parseClipConfig(source: string | object, fileName = 'config.json'): ClipConfig {
  const fail = (problem: string): never => {
    throw new ModelFileError(problem, fileName);
  };
  let json: unknown = source;
  if (typeof source === 'string') {
    try {
      json = JSON.parse(source);
    } catch (error) {
      return fail(`not valid JSON (${(error as Error).message})`);
    }
  }
  if (!isPlainObject(json)) return fail('not a JSON object');

  const modelType = json.model_type;
  const hasBothTowers = isPlainObject(json.text_config) && isPlainObject(json.vision_config);
  if (modelType !== 'clip' && !(modelType === undefined && hasBothTowers)) {
    throw new ModelFileError(`${fileName} is not a CLIP checkpoint (model_type: ${JSON.stringify(modelType ?? null)})`);
  }

  const fields = new ConfigFields(json, CLIP_DEFAULTS, '', fail);
  const text = new ConfigFields(
    objectOrEmpty(json.text_config, 'text_config', fail),
    TEXT_DEFAULTS,
    'text_config.',
    fail,
  );
  const vision = new ConfigFields(
    objectOrEmpty(json.vision_config, 'vision_config', fail),
    VISION_DEFAULTS,
    'vision_config.',
    fail,
  );

  const eosTokenId = text.optionalInteger('eos_token_id');
  const config: ClipConfig = {
    projectionDim: fields.integer('projection_dim'),
    logitScaleInit: fields.number('logit_scale_init_value'),
    text: {
      ...towerConfig(text),
      vocabSize: text.integer('vocab_size'),
      maxPositions: text.integer('max_position_embeddings'),
      eosTokenId: eosTokenId === LEGACY_EOS_TOKEN_ID ? undefined : eosTokenId,
    },
    vision: {
      ...towerConfig(vision),
      imageSize: vision.integer('image_size'),
      patchSize: vision.integer('patch_size'),
    },
  };
  for (const [prefix, tower] of [
    ['text_config', config.text],
    ['vision_config', config.vision],
  ] as const) {
    if (tower.hiddenSize % tower.numHeads !== 0) {
      fail(`${prefix}.hidden_size ${tower.hiddenSize} is not a multiple of num_attention_heads ${tower.numHeads}`);
    }
  }
  // The engine cuts whole patches; transformers' conv would silently drop a remainder.
  if (config.vision.imageSize % config.vision.patchSize !== 0) {
    fail(
      `vision_config.image_size ${config.vision.imageSize} is not a multiple of patch_size ${config.vision.patchSize}`,
    );
  }
  if (visionTokenCount(config.vision) > MAX_VISION_TOKENS) {
    fail(
      `vision_config.image_size ${config.vision.imageSize} in ${config.vision.patchSize} px patches makes ${visionTokenCount(config.vision)} image tokens, ` +
        `more than the ${MAX_VISION_TOKENS} octoclip accepts`,
    );
  }
  if (config.text.eosTokenId !== undefined && config.text.eosTokenId >= config.text.vocabSize) {
    fail(`text_config.eos_token_id ${config.text.eosTokenId} is outside the vocabulary of ${config.text.vocabSize}`);
  }
  return config;
}

/** Patches plus the class token. */
export function visionTokenCount(vision: VisionConfig): number {
  return (vision.imageSize / vision.patchSize) ** 2 + 1;
}

/** Every tensor the model reads, with its shape, named as in HF checkpoints, in HF's state-dict order. */
export function expectedTensors(config: ClipConfig): Map<string, number[]> {
  const tensors = new Map<string, number[]>();
  const { text, vision } = config;
  tensors.set('text_model.embeddings.token_embedding.weight', [text.vocabSize, text.hiddenSize]);
  tensors.set('text_model.embeddings.position_embedding.weight', [text.maxPositions, text.hiddenSize]);
  addEncoderLayers(tensors, 'text_model', text);
  addLayerNorm(tensors, 'text_model.final_layer_norm', text.hiddenSize);

  tensors.set('vision_model.embeddings.class_embedding', [vision.hiddenSize]);
  tensors.set('vision_model.embeddings.patch_embedding.weight', [
    vision.hiddenSize,
    RGB_CHANNELS,
    vision.patchSize,
    vision.patchSize,
  ]);
  tensors.set('vision_model.embeddings.position_embedding.weight', [visionTokenCount(vision), vision.hiddenSize]);
  addLayerNorm(tensors, 'vision_model.pre_layrnorm', vision.hiddenSize); // sic: the checkpoints' spelling
  addEncoderLayers(tensors, 'vision_model', vision);
  addLayerNorm(tensors, 'vision_model.post_layernorm', vision.hiddenSize);

  tensors.set('visual_projection.weight', [config.projectionDim, vision.hiddenSize]);
  tensors.set('text_projection.weight', [config.projectionDim, text.hiddenSize]);
  tensors.set('logit_scale', []);
  return tensors;
}

/**
 * Throws naming the first tensor the model needs that the checkpoint lacks, has with another shape, or stores
 * in a dtype octoclip cannot read. Tensors the model does not use (e.g. `*.position_ids`) are ignored.
 */
export function checkTensors(
  header: Pick<SafetensorsHeader, 'tensors'>,
  config: ClipConfig,
  fileName = 'model.safetensors',
): void {
  for (const [name, shape] of expectedTensors(config)) {
    const entry = header.tensors.get(name);
    if (!entry) throw new ModelFileError(`${name} is missing`, fileName);
    if (!sameShape(entry.shape, shape)) {
      throw new ModelFileError(
        `${name} has shape [${entry.shape.join(', ')}], config implies [${shape.join(', ')}]`,
        fileName,
      );
    }
    assertFloatDtype(entry, fileName);
  }
}

function addEncoderLayers(tensors: Map<string, number[]>, model: string, tower: TowerConfig): void {
  const { hiddenSize: d, intermediateSize: ff } = tower;
  for (let layer = 0; layer < tower.numLayers; layer++) {
    const prefix = `${model}.encoder.layers.${layer}`;
    for (const projection of ['k_proj', 'v_proj', 'q_proj', 'out_proj'])
      addLinear(tensors, `${prefix}.self_attn.${projection}`, d, d);
    addLayerNorm(tensors, `${prefix}.layer_norm1`, d);
    addLinear(tensors, `${prefix}.mlp.fc1`, d, ff);
    addLinear(tensors, `${prefix}.mlp.fc2`, ff, d);
    addLayerNorm(tensors, `${prefix}.layer_norm2`, d);
  }
}

/** PyTorch's Linear stores weight as [out, in]. */
function addLinear(tensors: Map<string, number[]>, prefix: string, inFeatures: number, outFeatures: number): void {
  tensors.set(`${prefix}.weight`, [outFeatures, inFeatures]);
  tensors.set(`${prefix}.bias`, [outFeatures]);
}

function addLayerNorm(tensors: Map<string, number[]>, prefix: string, size: number): void {
  tensors.set(`${prefix}.weight`, [size]);
  tensors.set(`${prefix}.bias`, [size]);
}

function towerConfig(fields: ConfigFields): TowerConfig {
  return {
    hiddenSize: fields.integer('hidden_size'),
    intermediateSize: fields.integer('intermediate_size'),
    numHeads: fields.integer('num_attention_heads'),
    numLayers: fields.integer('num_hidden_layers'),
    layerNormEps: fields.positiveNumber('layer_norm_eps', 1),
    hiddenAct: fields.choice('hidden_act', Object.keys(HIDDEN_ACTIVATIONS) as HiddenAct[]),
  };
}

/** Typed reads of one JSON object's fields, falling back to defaults and naming the field when it is wrong. */
class ConfigFields {
  constructor(
    private readonly json: Record<string, unknown>,
    private readonly defaults: Record<string, number | string>,
    private readonly prefix: string,
    private readonly fail: (problem: string) => never,
  ) {}

  /** A size: a positive integer no larger than its CONFIG_LIMITS entry. */
  integer(key: string): number {
    const value = this.value(key);
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      return this.fail(`${this.prefix}${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    const limit = CONFIG_LIMITS[key];
    if (limit !== undefined && (value as number) > limit) {
      return this.fail(
        `${this.prefix}${key} is ${value}, more than the ${limit} octoclip accepts (no CLIP is that large: is the file corrupt?)`,
      );
    }
    return value as number;
  }

  /** A strictly positive number below `below` (layer_norm_eps). */
  positiveNumber(key: string, below: number): number {
    const value = this.number(key);
    return value > 0 && value < below
      ? value
      : this.fail(`${this.prefix}${key} must be above 0 and below ${below}, got ${value}`);
  }

  /** A token id: a non-negative integer, or undefined when absent. */
  optionalInteger(key: string): number | undefined {
    const value = this.value(key);
    if (value === undefined) return undefined;
    return Number.isSafeInteger(value) && (value as number) >= 0
      ? (value as number)
      : this.fail(`${this.prefix}${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }

  number(key: string): number {
    const value = this.value(key);
    return typeof value === 'number' && Number.isFinite(value)
      ? value
      : this.fail(`${this.prefix}${key} must be a number, got ${JSON.stringify(value)}`);
  }

  string(key: string): string {
    const value = this.value(key);
    return typeof value === 'string'
      ? value
      : this.fail(`${this.prefix}${key} must be a string, got ${JSON.stringify(value)}`);
  }

  /** One of `supported`; any other value is refused, naming the field and the supported values. */
  choice<T extends string>(key: string, supported: readonly T[]): T {
    const value = this.string(key);
    return supported.includes(value as T)
      ? (value as T)
      : this.fail(
          `${this.prefix}${key} ${JSON.stringify(value)} is not supported: octoclip computes ${supported.join(', ')}`,
        );
  }

  /** Missing and null both mean "use the default", as in transformers. */
  private value(key: string): unknown {
    return this.json[key] ?? this.defaults[key];
  }
}

function objectOrEmpty(value: unknown, key: string, fail: (problem: string) => never): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  return isPlainObject(value) ? value : fail(`${key} is not an object`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, i) => size === b[i]);
}
