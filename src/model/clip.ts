// CLIPModel: the two towers on one set of frozen weights, plus the tokenizer and the image
// processor settings from the same Hub repo. The engine's entry point for inference.

import type { ModelAdapters } from './adapter';
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { AttentionScratch } from '../kernels/attention';
import { cosineLogitsForward, l2NormalizeForward } from '../kernels/classifier';
import { parseClipConfig, type ClipConfig } from './config';
import { parsePreprocessorConfig, type PreprocessorConfig } from './preprocessor';
import { ClipTextTransformer, type TokenBatch } from './text';
import { ClipTokenizer } from './tokenizer';
import { ClipVisionTransformer } from './vision';
import { ClipWeights, type WeightFiles, type WeightLoadOptions } from './weights';

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

/** What a model needs of a tokenizer: a prompt as a row for the text tower. */
export type PromptTokenizer = Pick<ClipTokenizer, 'tokenize'>;

const INFERENCE = { training: false, dropoutSeed: 0, record: false } as const;

export class ClipModel {
  readonly vision: ClipVisionTransformer;
  readonly text: ClipTextTransformer;
  /** One d(q·k) buffer for every attention backward of both towers, kept across steps. */
  private readonly attentionScratch: AttentionScratch;

  private constructor(
    readonly ctx: GpuContext,
    readonly id: string,
    readonly config: ClipConfig,
    readonly weights: ClipWeights,
    readonly tokenizer: PromptTokenizer,
    readonly preprocessor: PreprocessorConfig,
    readonly revision: string | undefined,
  ) {
    this.attentionScratch = new AttentionScratch(ctx);
    this.vision = new ClipVisionTransformer(ctx, weights, config, this.attentionScratch);
    this.text = new ClipTextTransformer(ctx, weights, config, this.attentionScratch);
  }

  static async load(ctx: GpuContext, files: ClipModelFiles, options: WeightLoadOptions = {}): Promise<ClipModel> {
    const config = parseClipConfig(files.config, 'config.json');
    const tokenizer = ClipTokenizer.fromHuggingFace(files.vocab, files.merges);
    const preprocessor = parsePreprocessorConfig(files.preprocessor, config.vision.imageSize);
    const weights = await ClipWeights.load(ctx, config, files.weights, options);
    return new ClipModel(ctx, files.id, config, weights, tokenizer, preprocessor, files.revision);
  }

  /** Zero weights (ClipWeights.zeros) and the given tokenizer: for dry runs that measure what the engine allocates. */
  static zeros(
    ctx: GpuContext,
    config: ClipConfig,
    tokenizer: PromptTokenizer,
    options: Pick<WeightLoadOptions, 'weightStorage'> = {},
  ): ClipModel {
    const preprocessor = parsePreprocessorConfig(undefined, config.vision.imageSize);
    const weights = ClipWeights.zeros(ctx, config, options);
    return new ClipModel(ctx, 'zeros', config, weights, tokenizer, preprocessor, undefined);
  }

  get logitScale(): number {
    return this.weights.logitScale;
  }

  tokenize(prompts: readonly string[]): TokenBatch {
    const tokens = prompts.map((p) => this.tokenizer.tokenize(p, this.config.text.maxPositions));
    return { ids: tokens.map((t) => t.ids), eotIndex: tokens.map((t) => t.eotIndex) };
  }

  /** Unnormalised image features [batch, projection_dim] of preprocessed pixels [batch, 3, S, S]. */
  imageFeatures(pixels: Tensor, batch: number, adapters: ModelAdapters | null = null): Tensor {
    const run = this.vision.forward(pixels, batch, adapters, INFERENCE);
    return run.features!;
  }

  /** Unnormalised text features [prompts, projection_dim]. */
  textFeatures(
    tokens: TokenBatch,
    adapters: ModelAdapters | null = null,
    options: { stopAtEndOfText?: boolean } = {},
  ): Tensor {
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
    this.attentionScratch.destroy();
    this.weights.destroy();
    this.ctx.releaseKeptBuffers(); // the weights' buffers are not kept for the next model
  }
}
