// The GPU memory a training step will need, measured without a GPU: the engine's own code (the
// Trainer, the step, the towers, the adapters, the kernels' scratch) runs on a zero-weight model on a
// dry-run device, which allocates nothing, and ctx.memory counts its buffers as it does on a GPU. Code
// that allocates more tomorrow is planned with it, as nothing here repeats what it allocates.

import { AdapterSet } from '../adapters/block-lora';
import { validateAdapterSettings, type AdapterSettings } from '../adapters/settings';
import { createDryRunContext, type DryRunLimits } from '../gpu/dry-run';
import { ClipModel } from '../model/clip';
import type { ClipConfig } from '../model/config';
import { defaultTrainSettings, Trainer } from './trainer';

export interface TrainingMemoryOptions {
  /** Images per optimizer step (a multiple of microBatchSize). */
  batchSize: number;
  /** Images per forward/backward pass: what the activations scale with. */
  microBatchSize: number;
  classes: number;
  adapter: AdapterSettings;
  /** Classes per text-tower chunk. */
  textChunk: number;
  /** AdamW keeps two moments per adapter parameter; SGD none. Default 'adamw'. */
  optimizer?: 'adamw' | 'sgd';
  /** Tokens of the text pass, up to the end-of-text token (the longest prompt of a chunk). Default 8: 'a photo of a {}.' with a one-token name. */
  textPromptTokens?: number;
  /**
   * The device's limits: a buffer past them fails the plan with the engine's own error, as it would
   * fail the run. Default: none.
   */
  limits?: DryRunLimits;
}

export interface MemoryPlan {
  /** What ctx.memory.peak reaches during a training step (after the first: see planTrainingMemory). */
  peakBytes: number;
  /** The bytes alive at the peak, by what holds them (holderOf the buffers' labels); the values add up to peakBytes. */
  breakdown: Record<string, number>;
}

/** Prompt length of 'a photo of a {}.' for a one-token class name: start, a, photo, of, a, name, '.', end. */
export const DEFAULT_PROMPT_TOKENS = 8;

/**
 * Peak GPU bytes of a training step of the Trainer with these settings: frozen weights, adapters with
 * their gradients and optimizer moments, the uniform arena, the micro-batch's pixels, and everything a
 * step allocates while it runs. The step measured is the second: the first grows scratch buffers that
 * later steps reuse. The images are 1x1, so their decoding buffers (one image at a time, before the
 * step's activations exist) count as nearly nothing: they depend on the images' sizes.
 *
 * The Trainer runs a step's micro-batches one after the other, each allocating and freeing the same
 * buffers (that is what accumulating gradients is for), so the plan runs steps of one micro-batch:
 * the peak is the same and the plan batchSize / microBatchSize times faster (the studio plans as the
 * settings change). test/training/memory-plan.test.ts checks this against Trainer steps of several.
 */
export async function planTrainingMemory(config: ClipConfig, options: TrainingMemoryOptions): Promise<MemoryPlan> {
  const { batchSize, microBatchSize, classes, textChunk } = options;
  for (const [name, value] of Object.entries({ batchSize, microBatchSize, classes, textChunk })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  if (batchSize % microBatchSize !== 0) {
    throw new RangeError(`batch size ${batchSize} must be a multiple of the micro-batch size ${microBatchSize}`);
  }
  validateAdapterSettings(options.adapter, config);
  const settings = defaultTrainSettings(1, { batchSize: microBatchSize, microBatchSize, textChunk, optimizer: options.optimizer, augment: false });
  return dryRun(config, { promptTokens: options.textPromptTokens, limits: options.limits }, async (model) => {
    const adapters = AdapterSet.create(model.ctx, config, options.adapter, { random: () => 0 });
    const images = Array.from({ length: microBatchSize }, () => ({ rgba: new Uint8Array(4), width: 1, height: 1 }));
    const classNames = Array.from({ length: classes }, (_, i) => `class ${i}`);
    const trainer = new Trainer(model, adapters, classNames, { images, labels: images.map((_, i) => i % classes) }, settings);
    await trainer.trainStep();
    model.ctx.memory.resetPeak();
    await trainer.trainStep();
  });
}

export interface DryRunOptions {
  /** Every prompt the model tokenises runs to its end-of-text at this many tokens. Default DEFAULT_PROMPT_TOKENS. */
  promptTokens?: number;
  limits?: DryRunLimits;
}

/**
 * Runs `work` on a model with zero weights on a dry-run device, and returns ctx.memory's peak (work
 * may reset it to measure one part) with what holds its bytes. For planning any use of the engine,
 * such as the benchmarks' reference steps.
 */
export async function dryRun(config: ClipConfig, options: DryRunOptions, work: (model: ClipModel) => Promise<void>): Promise<MemoryPlan> {
  const promptTokens = options.promptTokens ?? DEFAULT_PROMPT_TOKENS;
  const contextLength = config.text.maxPositions;
  if (!Number.isInteger(promptTokens) || promptTokens < 1 || promptTokens > contextLength) {
    throw new RangeError(`textPromptTokens must be an integer from 1 to ${contextLength}, got ${promptTokens}`);
  }
  const ctx = createDryRunContext(options.limits);
  ctx.memory.groupBy(holderOf);
  const tokenizer = { tokenize: (_text: string, length: number) => ({ ids: new Int32Array(length), eotIndex: promptTokens - 1 }) };
  await work(ClipModel.zeros(ctx, config, tokenizer));
  return { peakBytes: ctx.memory.peak, breakdown: ctx.memory.peakBreakdown() };
}

/**
 * What holds a buffer, from the label the engine gives it: the keys of MemoryPlan.breakdown. A label
 * no rule knows is its own holder, so that new allocations show up by name.
 */
export function holderOf(label: string): string {
  for (const [pattern, holder] of HOLDERS) if (pattern.test(label)) return holder;
  return label;
}

/** First match wins. */
const HOLDERS: readonly (readonly [RegExp, string])[] = [
  [/^uniform arena$/, 'uniform arena'],
  [/^(vision_model|text_model|visual_projection|text_projection|logit_scale)\b/, 'weights'],
  [/^(adapters|adapter block sums|block sums table)$/, 'adapters'],
  [/^adapter gradients$/, 'adapter gradients'],
  [/^adam_[mv]$/, 'optimizer moments'],
  [/^attention d\(q·k\) scratch$/, 'attention backward scratch'],
  [/^text\.features\.all\.normalized$/, 'cached class features'], // frozenClassFeatures, kept by the Trainer
  [/^pixel_values$/, 'pixels'],
  [/^read /, 'readback staging'],
  [/^(vision|text)\.features$|^text\.features\.all$|^(image|text)\.(normalized|norms)$|^(logits|probs|losses|labels)$|^d_(logits|image|text)\b/, 'features, logits and loss'],
  [/^vision\.(backward\.|d_)/, 'vision backward'],
  [/^text\.(backward\.|d_)/, 'text backward'],
  [/^vision\./, 'vision activations'],
  [/^text\./, 'text activations'],
];
