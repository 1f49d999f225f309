// A tiny CLIP with random weights, the real architecture and the Hub's file layout (config.json,
// model.safetensors, vocab.json, merges.txt, preprocessor_config.json): the test model for the whole engine.

import { expectedTensors, parseClipConfig, type ClipConfig, type HiddenAct } from './config';
import { encodeSafetensors, type FloatDtype, type TensorToEncode } from './safetensors';
import { BASE_SYMBOLS, CONTEXT_LENGTH, END_OF_TEXT, splitWords, START_OF_TEXT, wordSymbols } from './tokenizer';

export interface TinyClipOptions {
  seed?: number;
  textHidden?: number;
  textLayers?: number;
  textHeads?: number;
  visionHidden?: number;
  visionLayers?: number;
  visionHeads?: number;
  projectionDim?: number;
  imageSize?: number;
  patchSize?: number;
  /** BPE merges learned from the built-in corpus (fewer if the corpus runs out of pairs). */
  merges?: number;
  /** How model.safetensors stores the weights. */
  dtype?: FloatDtype;
  /** Both towers' MLP activation (config.json's hidden_act). */
  hiddenAct?: HiddenAct;
}

/**
 * The towers differ in width, depth and head count, and the projection in width, so that code mixing up
 * text and vision sizes fails on this model. Head dimension 16 in both; MLPs 4x wide as in CLIP; the text
 * context is CLIP's 77; a 32-pixel image in 8-pixel patches makes 17 vision tokens.
 */
export const TINY_CLIP_DEFAULTS: Required<TinyClipOptions> = {
  seed: 1,
  textHidden: 32,
  textLayers: 2,
  textHeads: 2,
  visionHidden: 48,
  visionLayers: 3,
  visionHeads: 3,
  projectionDim: 24,
  imageSize: 32,
  patchSize: 8,
  merges: 400,
  dtype: 'F32',
  hiddenAct: 'quick_gelu',
};

/** What a trained OpenAI checkpoint stores in `logit_scale`: ln(100), the value HF clamps exp() to. */
const TRAINED_LOGIT_SCALE = 4.605170185988092;
/** transformers' CLIPConfig default, which the Hub's configs carry (ln(1/0.07)); only training from scratch uses it. */
const LOGIT_SCALE_INIT_VALUE = 2.6592;
const IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073];
const IMAGE_STD = [0.26862954, 0.26130258, 0.27577711];
/** Noise on biases and layer-norm parameters, which transformers initialises to 0 and 1: nonzero so a skipped bias shows. */
const SMALL_NOISE_STD = 0.02;

/** The tiny CLIP's files, by Hub file name. Deterministic: the same options give the same bytes. */
export function makeTinyClip(options: TinyClipOptions = {}): { files: Record<string, Uint8Array | string> } {
  // An option given as undefined keeps its default.
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const settings: Required<TinyClipOptions> = { ...TINY_CLIP_DEFAULTS, ...given };
  const { vocab, merges } = tinyVocabulary(settings.merges);
  const configJson = tinyConfigJson(settings, vocab.length);
  return {
    files: {
      'config.json': json(configJson),
      'model.safetensors': encodeSafetensors(tinyTensors(configJson, settings), { format: 'pt' }),
      'vocab.json': vocabJson(vocab),
      'merges.txt': `${['#version: 0.2', ...merges.map(([first, second]) => `${first} ${second}`)].join('\n')}\n`,
      'preprocessor_config.json': json({
        crop_size: { height: settings.imageSize, width: settings.imageSize },
        do_center_crop: true,
        do_convert_rgb: true,
        do_normalize: true,
        do_rescale: true,
        do_resize: true,
        image_mean: IMAGE_MEAN,
        image_processor_type: 'CLIPImageProcessor',
        image_std: IMAGE_STD,
        resample: 3, // bicubic
        rescale_factor: 1 / 255,
        size: { shortest_edge: settings.imageSize },
      }),
    },
  };
}

function tinyConfigJson(settings: Required<TinyClipOptions>, vocabSize: number) {
  const endOfTextId = vocabSize - 1;
  const shared = {
    hidden_act: settings.hiddenAct,
    initializer_factor: 1.0,
    initializer_range: 0.02,
    layer_norm_eps: 1e-5,
    projection_dim: settings.projectionDim,
  };
  return {
    architectures: ['CLIPModel'],
    initializer_factor: 1.0,
    logit_scale_init_value: LOGIT_SCALE_INIT_VALUE,
    model_type: 'clip',
    projection_dim: settings.projectionDim,
    text_config: {
      ...shared,
      bos_token_id: vocabSize - 2,
      eos_token_id: endOfTextId,
      hidden_size: settings.textHidden,
      intermediate_size: 4 * settings.textHidden,
      max_position_embeddings: CONTEXT_LENGTH,
      model_type: 'clip_text_model',
      num_attention_heads: settings.textHeads,
      num_hidden_layers: settings.textLayers,
      pad_token_id: endOfTextId,
      vocab_size: vocabSize,
    },
    torch_dtype: 'float32',
    vision_config: {
      ...shared,
      hidden_size: settings.visionHidden,
      image_size: settings.imageSize,
      intermediate_size: 4 * settings.visionHidden,
      model_type: 'clip_vision_model',
      num_attention_heads: settings.visionHeads,
      num_channels: 3,
      num_hidden_layers: settings.visionLayers,
      patch_size: settings.patchSize,
    },
  };
}

/**
 * Weights drawn as transformers' CLIPPreTrainedModel._init_weights draws them (initializer_factor 1), so
 * activations have realistic scales; biases and layer norms get small noise instead of 0 and 1.
 */
function tinyTensors(configJson: object, settings: Required<TinyClipOptions>): TensorToEncode[] {
  const config = parseClipConfig(configJson);
  const normal = seededNormal(settings.seed);
  const tensors: TensorToEncode[] = [];
  for (const [name, shape] of expectedTensors(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name === 'logit_scale') {
      data[0] = TRAINED_LOGIT_SCALE;
    } else {
      const isNormWeight = /(layer_?norm\d?|layrnorm)\.weight$/.test(name);
      const std = name.endsWith('.bias') || isNormWeight ? SMALL_NOISE_STD : initStd(config, name);
      for (let i = 0; i < data.length; i++) data[i] = (isNormWeight ? 1 : 0) + std * normal();
    }
    tensors.push({ name, shape, data, dtype: settings.dtype });
    // Checkpoints converted from PyTorch carry int64 position_ids buffers, which loaders must skip.
    if (name.endsWith('embeddings.position_embedding.weight')) {
      tensors.push({
        name: name.replace('position_embedding.weight', 'position_ids'),
        shape: [1, shape[0]],
        data: BigInt64Array.from({ length: shape[0] }, (_, i) => BigInt(i)),
        dtype: 'I64',
      });
    }
  }
  return tensors;
}

/** A weight's standard deviation in transformers' CLIP initialisation. */
function initStd(config: ClipConfig, name: string): number {
  if (name === 'text_projection.weight') return config.text.hiddenSize ** -0.5;
  if (name === 'visual_projection.weight') return config.vision.hiddenSize ** -0.5;
  const { hiddenSize: hidden, numLayers: layers } = name.startsWith('text_model') ? config.text : config.vision;
  if (name.endsWith('class_embedding')) return hidden ** -0.5;
  if (name.includes('.embeddings.')) return 0.02; // token, position and patch embeddings
  // q and k 4x wider than transformers' init: with its near-uniform attention the class token averages
  // every patch, so digit images' features were 0.998 cosine-similar and few-shot training stalled at
  // chance; sharper attention makes the random tower a usable feature extractor (measured: 3 digit
  // classes, 16 shots, held-out accuracy 51% zero-shot -> 96% after 120 steps).
  if (/(q|k)_proj\.weight$/.test(name)) return 4 * hidden ** -0.5 * (2 * layers) ** -0.5;
  if (/v_proj\.weight$|fc2\.weight$/.test(name)) return hidden ** -0.5 * (2 * layers) ** -0.5;
  if (name.endsWith('out_proj.weight')) return hidden ** -0.5;
  if (name.endsWith('fc1.weight')) return (2 * hidden) ** -0.5;
  throw new Error(`tiny CLIP: no initialisation for ${name}`);
}

/**
 * Approximately standard normal values from mulberry32: the sum of 12 uniforms less 6 has mean 0 and
 * variance 1, and needs only exact arithmetic, so every JavaScript engine makes the same bytes.
 */
function seededNormal(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    let sum = -6;
    for (let i = 0; i < 12; i++) sum += uniform();
    return sum;
  };
}

// A small English corpus of zero-shot prompts over digit words and the CIFAR-10 and CIFAR-100 class names,
// so the tiny vocabulary holds whole words for the prompts that tests and demos use.
const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const CIFAR10_WORDS = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const CIFAR100_WORDS = [
  'apple',
  'aquarium fish',
  'baby',
  'bear',
  'beaver',
  'bed',
  'bee',
  'beetle',
  'bicycle',
  'bottle',
  'bowl',
  'boy',
  'bridge',
  'bus',
  'butterfly',
  'camel',
  'can',
  'castle',
  'caterpillar',
  'cattle',
  'chair',
  'chimpanzee',
  'clock',
  'cloud',
  'cockroach',
  'couch',
  'crab',
  'crocodile',
  'cup',
  'dinosaur',
  'dolphin',
  'elephant',
  'flatfish',
  'forest',
  'fox',
  'girl',
  'hamster',
  'house',
  'kangaroo',
  'keyboard',
  'lamp',
  'lawn mower',
  'leopard',
  'lion',
  'lizard',
  'lobster',
  'man',
  'maple tree',
  'motorcycle',
  'mountain',
  'mouse',
  'mushroom',
  'oak tree',
  'orange',
  'orchid',
  'otter',
  'palm tree',
  'pear',
  'pickup truck',
  'pine tree',
  'plain',
  'plate',
  'poppy',
  'porcupine',
  'possum',
  'rabbit',
  'raccoon',
  'ray',
  'road',
  'rocket',
  'rose',
  'sea',
  'seal',
  'shark',
  'shrew',
  'skunk',
  'skyscraper',
  'snail',
  'snake',
  'spider',
  'squirrel',
  'streetcar',
  'sunflower',
  'sweet pepper',
  'table',
  'tank',
  'telephone',
  'television',
  'tiger',
  'tractor',
  'train',
  'trout',
  'tulip',
  'turtle',
  'wardrobe',
  'whale',
  'willow tree',
  'wolf',
  'woman',
  'worm',
];
const PROMPTS = [
  'a photo of a {}.',
  'a photo of the {}.',
  'a blurry photo of a {}.',
  'a close-up photo of a {}.',
  'a good photo of the {}.',
  'a drawing of a {}.',
  'an image of a {}.',
  'this is a picture of a small {}.',
];
const DIGIT_PROMPTS = [
  'a photo of the number {}.',
  'a handwritten digit {}.',
  'the number {} written in black and white.',
];

/** Digit and CIFAR-10 words in every prompt, CIFAR-100 names in one: the frequent words are merged first. */
function tinyCorpus(): string {
  const fill = (templates: string[], words: string[]) => templates.flatMap((t) => words.map((w) => t.replace('{}', w)));
  return [
    ...fill(PROMPTS, [...DIGIT_WORDS, ...CIFAR10_WORDS]),
    ...fill(DIGIT_PROMPTS, [...DIGIT_WORDS, '0 1 2 3 4 5 6 7 8 9']),
    ...fill(PROMPTS.slice(0, 1), CIFAR100_WORDS),
  ].join('\n');
}

/**
 * Learns byte-level BPE merges from the corpus the way the merges were learned for CLIP: repeatedly join
 * the most frequent adjacent pair (ties to the first pair in code-unit order). The vocabulary is laid out
 * as OpenAI's: the 512 base symbols, one token per merge, then start- and end-of-text.
 */
const vocabularies = new Map<number, { vocab: string[]; merges: [string, string][] }>();

/** Learning takes a moment and tests build the model often: learn each merge count once. */
function tinyVocabulary(mergeCount: number): { vocab: string[]; merges: [string, string][] } {
  let vocabulary = vocabularies.get(mergeCount);
  if (!vocabulary) {
    vocabulary = learnVocabulary(mergeCount);
    vocabularies.set(mergeCount, vocabulary);
  }
  return vocabulary;
}

function learnVocabulary(mergeCount: number): { vocab: string[]; merges: [string, string][] } {
  const wordCounts = new Map<string, number>();
  for (const word of splitWords(tinyCorpus())) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  const words = [...wordCounts].map(([word, count]) => ({ symbols: wordSymbols(word), count }));
  const tokens = new Set(BASE_SYMBOLS);
  const merges: [string, string][] = [];

  while (merges.length < mergeCount) {
    const pairCounts = new Map<string, { pair: [string, string]; count: number }>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        const entry = pairCounts.get(key) ?? { pair: [symbols[i], symbols[i + 1]], count: 0 };
        entry.count += count;
        pairCounts.set(key, entry);
      }
    }
    let best: { key: string; pair: [string, string]; count: number } | undefined;
    for (const [key, entry] of pairCounts) {
      // A pair spelling an existing token would give the vocabulary a duplicate entry.
      if (tokens.has(entry.pair[0] + entry.pair[1])) continue;
      if (!best || entry.count > best.count || (entry.count === best.count && key < best.key)) best = { key, ...entry };
    }
    if (!best) break;
    const [first, second] = best.pair;
    merges.push(best.pair);
    tokens.add(first + second);
    for (const word of words) {
      const merged: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (word.symbols[i] === first && word.symbols[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word.symbols[i]);
        }
      }
      word.symbols = merged;
    }
  }
  return { vocab: [...BASE_SYMBOLS, ...merges.map(([a, b]) => a + b), START_OF_TEXT, END_OF_TEXT], merges };
}

/** Token to id in id order, as the Hub's files list them (a JS object would put integer-like keys such as "7" first). */
function vocabJson(vocab: string[]): string {
  return `{${vocab.map((token, id) => `${JSON.stringify(token)}:${id}`).join(',')}}`;
}

/** Config fields that transformers types as float: written as 1.0, not 1, so Python reads a float (its strict config classes refuse an int). */
const FLOAT_FIELDS =
  /("(?:initializer_factor|initializer_range|layer_norm_eps|logit_scale_init_value|attention_dropout|dropout)": -?\d+)(?=,?\n)/g;

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(FLOAT_FIELDS, '$1.0')}\n`;
}
