// One training step of CLIP-LoRA's recipe: cross-entropy over exp(logit_scale) * cos(image, class
// text) with adapters in both towers, backward to the adapters only. The text tower runs over every
// class in chunks: first a forward of all chunks (no activations kept) for the loss, then per chunk a
// recorded forward and its backward, so memory grows with the chunk, not with the number of classes.

import type { AdapterSet } from '../adapters/block-lora';
import type { Tensor } from '../gpu/tensor';
import {
  cosineLogitsBackward,
  cosineLogitsForward,
  l2NormalizeBackward,
  l2NormalizeForward,
  softmaxCrossEntropyBackward,
  softmaxCrossEntropyForward,
} from '../kernels/classifier';
import type { ClipModel } from '../model/clip';
import type { TokenBatch } from '../model/text';

export interface StepOptions {
  /** Seeds the adapter dropout masks of this step. */
  dropoutSeed: number;
  training: boolean;
  /** The gradient is scaled by 1/(batch * accumulationSteps): the mean over the effective batch. */
  accumulationSteps: number;
  /** Classes per text-tower chunk. */
  textChunk: number;
}

export interface StepResult {
  loss: number;
  correct: number;
}

export class DivergenceError extends Error {
  override name = 'DivergenceError';
}

function sliceTokens(tokens: TokenBatch, start: number, end: number): TokenBatch {
  return { ids: tokens.ids.slice(start, end), eotIndex: tokens.eotIndex.slice(start, end) };
}

/** Features of every class prompt, chunk by chunk, without keeping activations. */
function textFeaturesChunked(
  model: ClipModel,
  classes: TokenBatch,
  adapters: AdapterSet | null,
  options: StepOptions,
): Tensor {
  const { ctx } = model;
  const count = classes.ids.length;
  const dim = model.config.projectionDim;
  const all = ctx.tensor([count, dim], 'text.features.all');
  for (let start = 0; start < count; start += options.textChunk) {
    const end = Math.min(count, start + options.textChunk);
    const run = model.text.forward(sliceTokens(classes, start, end), adapters, {
      training: options.training,
      dropoutSeed: chunkSeed(options, start),
      record: false,
    });
    ctx.copy(run.features!, all, (end - start) * dim, 0, start * dim);
    run.features!.destroy();
  }
  return all;
}

function chunkSeed(options: StepOptions, start: number): number {
  return (options.dropoutSeed + Math.imul(start + 1, 0x27d4eb2f)) >>> 0;
}

/**
 * Forward and backward of one micro-batch: pixels [batch, 3, S, S] with labels, against every class
 * prompt. Adapter gradients accumulate (the caller zeroes them at the start of an optimizer step).
 * `cachedText`: normalised class features to reuse when the text tower carries no adapters.
 */
export async function trainMicroBatch(
  model: ClipModel,
  adapters: AdapterSet,
  pixels: Tensor,
  labels: readonly number[],
  classes: TokenBatch,
  options: StepOptions,
  cachedText: Tensor | null,
): Promise<StepResult> {
  const { ctx } = model;
  const batch = labels.length;
  const classCount = classes.ids.length;
  const dim = model.config.projectionDim;
  const trainText = adapters.hasTower('text');
  const trainVision = adapters.hasTower('vision');

  const visionRun = model.vision.forward(pixels, batch, adapters, {
    training: options.training,
    dropoutSeed: options.dropoutSeed,
    record: trainVision,
  });
  const imageFeatures = visionRun.features!;
  const imageNormalized = ctx.tensor([batch, dim], 'image.normalized');
  const imageNorms = ctx.tensor([batch], 'image.norms');
  l2NormalizeForward(ctx, imageFeatures, imageNormalized, imageNorms);

  let textFeatures: Tensor | null = null;
  let textNormalized = cachedText;
  let textNorms: Tensor | null = null;
  if (!textNormalized) {
    textFeatures = textFeaturesChunked(model, classes, adapters, options);
    textNormalized = ctx.tensor([classCount, dim], 'text.normalized');
    textNorms = ctx.tensor([classCount], 'text.norms');
    l2NormalizeForward(ctx, textFeatures, textNormalized, textNorms);
  }

  const logits = ctx.tensor([batch, classCount], 'logits');
  const probs = ctx.tensor([batch, classCount], 'probs');
  const losses = ctx.tensor([batch], 'losses');
  const labelTensor = ctx.tensor([batch], 'labels', Float32Array.from(labels));
  cosineLogitsForward(ctx, imageNormalized, textNormalized, logits, model.logitScale);
  softmaxCrossEntropyForward(ctx, logits, labelTensor, losses, probs);
  const dLogits = ctx.tensor([batch, classCount], 'd_logits');
  softmaxCrossEntropyBackward(ctx, probs, labelTensor, dLogits, 1 / (batch * options.accumulationSteps));

  const dImageNormalized = trainVision ? ctx.tensor([batch, dim], 'd_image.normalized') : null;
  const dTextNormalized = trainText ? ctx.tensor([classCount, dim], 'd_text.normalized') : null;
  cosineLogitsBackward(
    ctx,
    dLogits,
    imageNormalized,
    textNormalized,
    dImageNormalized,
    dTextNormalized,
    model.logitScale,
  );

  if (dImageNormalized) {
    const dImage = ctx.tensor([batch, dim], 'd_image.features');
    l2NormalizeBackward(ctx, dImageNormalized, imageNormalized, imageNorms, dImage);
    model.vision.backward(visionRun, dImage);
    dImage.destroy();
  } else {
    visionRun.destroy();
  }

  if (dTextNormalized && textNorms) {
    const dText = ctx.tensor([classCount, dim], 'd_text.features');
    l2NormalizeBackward(ctx, dTextNormalized, textNormalized, textNorms, dText);
    for (let start = 0; start < classCount; start += options.textChunk) {
      const end = Math.min(classCount, start + options.textChunk);
      const run = model.text.forward(sliceTokens(classes, start, end), adapters, {
        training: options.training,
        dropoutSeed: chunkSeed(options, start),
        record: true,
      });
      const dChunk = ctx.tensor([end - start, dim], 'd_text.chunk');
      ctx.copy(dText, dChunk, (end - start) * dim, start * dim, 0);
      model.text.backward(run, dChunk);
      run.features!.destroy();
      dChunk.destroy();
    }
    dText.destroy();
  }

  const [lossValues, probValues] = await ctx.readMany([losses, probs]);
  for (const t of [
    imageFeatures,
    imageNormalized,
    imageNorms,
    logits,
    probs,
    losses,
    labelTensor,
    dLogits,
    dImageNormalized,
    dTextNormalized,
    textFeatures,
    textNorms,
  ])
    t?.destroy();
  if (textNormalized !== cachedText) textNormalized.destroy();

  let loss = 0;
  let correct = 0;
  for (let i = 0; i < batch; i++) {
    loss += lossValues[i];
    const row = probValues.subarray(i * classCount, (i + 1) * classCount);
    let best = 0;
    for (let c = 1; c < classCount; c++) if (row[c] > row[best]) best = c;
    if (best === labels[i]) correct++;
  }
  loss /= batch;
  if (!Number.isFinite(loss)) {
    throw new DivergenceError(
      `the loss became ${loss}: training diverged. Lower the learning rate and start again from the last checkpoint.`,
    );
  }
  return { loss, correct };
}

/** Normalised class features for a text tower without adapters: constant through training. */
export function frozenClassFeatures(model: ClipModel, classes: TokenBatch, options: StepOptions): Tensor {
  const features = textFeaturesChunked(model, classes, null, options);
  const normalized = model.normalize(features);
  features.destroy();
  return normalized;
}
