// The models the benchmarks run: the tiny CLIP of the tests, and a random-weight CLIP with
// openai/clip-vit-base-patch32's exact configuration (as bench/full-size.ts builds it, here in memory)
// and one with ViT-B/16's; the ViT-B/16 configuration for the memory plan; and the tokenizer that gives real prompt lengths.

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { GpuContext } from '../src/gpu/context';
import { ClipModel } from '../src/model/clip';
import { expectedTensors, parseClipConfig, VIT_B_32_CONFIG, type ClipConfig } from '../src/model/config';
import { encodeSafetensors } from '../src/model/safetensors';
import type { TokenBatch } from '../src/model/text';
import { knownClipConfig, knownClipModel } from '../src/training/known-models';
import { makeTinyClip } from '../src/model/tiny';
import { ClipTokenizer } from '../src/model/tokenizer';
import { PRECISION_NUMERICS, type WeightNumerics } from '../src/common/recipe';
import { byteSourceFromBytes } from '../src/model/weights';
import { promptFor } from '../src/common/prompts';

export interface BenchModel {
  scale: string;
  model: ClipModel;
  /** Class prompts ('a photo of a {}.') as token ids. */
  prompts(classNames: readonly string[]): TokenBatch;
  /** Which vocabulary tokenises the prompts (prompt lengths depend on it). */
  tokenizer: string;
}

/** OpenAI's released merges, where the project's shared data is checked out beside or inside the repo. */
const OPENAI_MERGES = [
  '../shared/data/clip-tokenizer/bpe_simple_vocab_16e6.txt.gz',
  'shared/data/clip-tokenizer/bpe_simple_vocab_16e6.txt.gz',
];

export function vitB32Config(): ClipConfig {
  return parseClipConfig(VIT_B_32_CONFIG);
}

/** openai/clip-vit-base-patch16: ViT-B/32's configuration with 16-pixel patches (197 vision tokens). */
const VIT_B_16_CONFIG = { ...VIT_B_32_CONFIG, vision_config: { ...VIT_B_32_CONFIG.vision_config, patch_size: 16 } };

export function vitB16Config(): ClipConfig {
  return knownClipConfig(knownClipModel('openai/clip-vit-base-patch16')!);
}

export async function loadTinyBenchModel(
  ctx: GpuContext,
  numerics: WeightNumerics = PRECISION_NUMERICS.f32,
): Promise<BenchModel> {
  const model = await loadFromFiles(ctx, 'tiny-clip', makeTinyClip().files, numerics);
  return {
    scale: 'tiny',
    model,
    prompts: (names) => model.tokenize(names.map((n) => promptFor(n))),
    tokenizer: 'tiny vocabulary (400 merges)',
  };
}

/**
 * ViT-B/32 with random weights (151M parameters, 605 MB of F32), uploaded through the streaming loader.
 * Prompts use OpenAI's vocabulary when its merges are here (so 'a photo of a cat.' is 8 tokens, as with
 * the real model); otherwise the tiny model's, whose prompts are longer.
 */
export function loadRandomVitB32(
  ctx: GpuContext,
  numerics: WeightNumerics = PRECISION_NUMERICS.f32,
): Promise<BenchModel> {
  return loadRandomVit(ctx, 'ViT-B/32', VIT_B_32_CONFIG, numerics);
}

/** ViT-B/16 with random weights, as loadRandomVitB32. */
export function loadRandomVitB16(
  ctx: GpuContext,
  numerics: WeightNumerics = PRECISION_NUMERICS.f32,
): Promise<BenchModel> {
  return loadRandomVit(ctx, 'ViT-B/16', VIT_B_16_CONFIG, numerics);
}

async function loadRandomVit(
  ctx: GpuContext,
  scale: string,
  rawConfig: object,
  numerics: WeightNumerics,
): Promise<BenchModel> {
  const config = parseClipConfig(rawConfig);
  const tensors = [...expectedTensors(config)].map(([name, shape], i) => ({
    name,
    shape,
    data: randomWeights(shape, name, i + 1),
  }));
  const tiny = makeTinyClip().files;
  const model = await loadFromFiles(
    ctx,
    `random ${scale}`,
    {
      ...tiny,
      'config.json': JSON.stringify(rawConfig),
      'model.safetensors': encodeSafetensors(tensors),
    },
    numerics,
  );
  const mergesPath = OPENAI_MERGES.map((path) => resolve(path)).find((path) => existsSync(path));
  if (!mergesPath) {
    return {
      scale,
      model,
      prompts: (names) => model.tokenize(names.map((n) => promptFor(n))),
      tokenizer: 'tiny vocabulary (OpenAI merges not found)',
    };
  }
  const tokenizer = ClipTokenizer.fromOpenAiMerges(gunzipSync(readFileSync(mergesPath)).toString('utf8'));
  const prompts = (names: readonly string[]): TokenBatch => {
    const tokens = names.map((name) => tokenizer.tokenize(promptFor(name), config.text.maxPositions));
    return { ids: tokens.map((t) => t.ids), eotIndex: tokens.map((t) => t.eotIndex) };
  };
  return { scale, model, prompts, tokenizer: "OpenAI's (49,408 tokens)" };
}

async function loadFromFiles(
  ctx: GpuContext,
  id: string,
  files: Record<string, Uint8Array | string>,
  numerics: WeightNumerics,
): Promise<ClipModel> {
  const text = (name: string) => {
    const file = files[name];
    return typeof file === 'string' ? file : new TextDecoder().decode(file);
  };
  return ClipModel.load(
    ctx,
    {
      id,
      config: text('config.json'),
      weights: byteSourceFromBytes('model.safetensors', files['model.safetensors'] as Uint8Array),
      vocab: text('vocab.json'),
      merges: text('merges.txt'),
    },
    numerics,
  );
}

/** Small uniform weights (layer-norm scales near 1), from a per-tensor LCG: activations stay finite through 12 layers. */
export function randomWeights(shape: number[], name: string, seed: number): Float32Array {
  if (name === 'logit_scale') return Float32Array.of(Math.log(100));
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const isNormScale = /layer_?norm|layrnorm/.test(name) && name.endsWith('.weight');
  let state = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const uniform = state / 4294967296 - 0.5;
    data[i] = isNormScale ? 1 + 0.02 * uniform : 0.04 * uniform;
  }
  return data;
}
