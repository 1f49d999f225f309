// CLIPModel: the two towers on one set of frozen weights, plus the tokenizer and the image
// processor settings from the same Hub repo. The engine's entry point for inference.

import type { AdapterSet } from '../adapters/block-lora';
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { cosineLogitsForward, l2NormalizeForward } from '../kernels/classifier';
import { parseClipConfig, type ClipConfig } from './config';
import { parsePreprocessorConfig, type PreprocessorConfig } from './preprocessor';
import { ClipTextTransformer, type TokenBatch } from './text';
import { ClipTokenizer } from './tokenizer';
import { ClipVisionTransformer } from './vision';
import { ClipWeights, type WeightFiles } from './weights';

/** The files of a Hub CLIP repo (config.json, model.safetensors or its shards, vocab.json, merges.txt, preprocessor_config.json). */
export interface ClipModelFiles {
  id: string;
  config: string;
  weights: WeightFiles;
  vocab: string;
  merges: string;
  preprocessor?: string;
  /** The Hub commit the files come from, when known: adapter files pin it beside the model id. */
  revision?: string;
}

const INFERENCE = { training: false, dropoutSeed: 0, record: false } as const;

export class ClipModel {
  readonly vision: ClipVisionTransformer;
  readonly text: ClipTextTransformer;

  private constructor(
    readonly ctx: GpuContext,
    readonly id: string,
    readonly config: ClipConfig,
    readonly weights: ClipWeights,
    readonly tokenizer: ClipTokenizer,
    readonly preprocessor: PreprocessorConfig,
    readonly revision: string | undefined,
  ) {
    this.vision = new ClipVisionTransformer(ctx, weights, config);
    this.text = new ClipTextTransformer(ctx, weights, config);
  }

  static async load(ctx: GpuContext, files: ClipModelFiles, onProgress?: (loaded: number, total: number) => void): Promise<ClipModel> {
    const config = parseClipConfig(files.config, 'config.json');
    const tokenizer = ClipTokenizer.fromHuggingFace(files.vocab, files.merges);
    const preprocessor = parsePreprocessorConfig(files.preprocessor, config.vision.imageSize);
    const weights = await ClipWeights.load(ctx, config, files.weights, onProgress);
    return new ClipModel(ctx, files.id, config, weights, tokenizer, preprocessor, files.revision);
  }

  get logitScale(): number {
    return this.weights.logitScale;
  }

  tokenize(prompts: readonly string[]): TokenBatch {
    const tokens = prompts.map((p) => this.tokenizer.tokenize(p, this.config.text.maxPositions));
    return { ids: tokens.map((t) => t.ids), eotIndex: tokens.map((t) => t.eotIndex) };
  }

  /** Unnormalised image features [batch, projection_dim] of preprocessed pixels [batch, 3, S, S]. */
  imageFeatures(pixels: Tensor, batch: number, adapters: AdapterSet | null = null): Tensor {
    const run = this.vision.forward(pixels, batch, adapters, INFERENCE);
    return run.features!;
  }

  /** Unnormalised text features [prompts, projection_dim]. */
  textFeatures(tokens: TokenBatch, adapters: AdapterSet | null = null, options: { stopAtEndOfText?: boolean } = {}): Tensor {
    const run = this.text.forward(tokens, adapters, { ...INFERENCE, ...options });
    return run.features!;
  }

  /** L2-normalised copy of features [rows, projection_dim]. */
  normalize(features: Tensor): Tensor {
    const rows = features.shape[0];
    const out = this.ctx.tensor(features.shape, `${features.label}.normalized`);
    const norms = this.ctx.tensor([rows], `${features.label}.norms`);
    l2NormalizeForward(this.ctx, features, out, norms);
    norms.destroy();
    return out;
  }

  /** logits [images, classes] = exp(logit_scale) * cos(image, text) from normalised features. */
  logits(imageNormalized: Tensor, textNormalized: Tensor): Tensor {
    const out = this.ctx.tensor([imageNormalized.shape[0], textNormalized.shape[0]], 'logits');
    cosineLogitsForward(this.ctx, imageNormalized, textNormalized, out, this.logitScale);
    return out;
  }

  destroy(): void {
    this.weights.destroy();
  }
}
