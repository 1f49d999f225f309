// One few-shot fine-tuning step at a time: seeded batches of the support set, GPU augmentation, AdamW
// (or SGD) on a cosine schedule, gradient accumulation, evaluation, and checkpoints from which a run
// continues exactly as if it had never stopped. The run around the steps is src/training/run.ts.

import type { AdapterSet } from '../adapters/block-lora';
import { DEFAULT_TEMPLATE, promptsFor, type ClassPrompts } from '../common/prompts';
import { Rng, RNG_STREAM, type RngState } from '../common/random';
import { validateTrainSettings, type TrainSettings } from '../common/recipe';
import type { Tensor } from '../gpu/tensor';
import { randomResizedCropBox, type CropBox } from '../kernels/preprocess';
import type { ClipModel } from '../model/clip';
import { evaluationCrop, preprocessBatch, type CropChoice, type RgbaImage } from '../model/preprocessor';
import type { TokenBatch } from '../model/text';
import { classEmbeddings, classify } from '../model/zero-shot';
import { AdapterOptimizer } from './optimizer';
import { BatchSampler, type BatchSamplerState } from './sampler';
import { learningRateAt } from './schedule';
import { frozenClassFeatures, trainMicroBatch, type StepOptions } from './step';

export interface LabelledImages {
  images: RgbaImage[];
  labels: number[];
}

export interface StepLog {
  step: number;
  loss: number;
  accuracy: number;
  lr: number;
  milliseconds: number;
}

export interface Evaluation {
  accuracy: number;
  perClassAccuracy: number[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  predictions: number[];
}

/** Everything a run needs to continue bit-identically: adapter and optimizer tensors, counters, random state. */
export interface TrainerCheckpoint {
  step: number;
  tensors: Map<string, Float32Array>;
  sampler: BatchSamplerState;
  rng: RngState;
}

export class Trainer {
  step = 0;
  private readonly sampler: BatchSampler;
  private readonly rng: Rng;
  private readonly optimizer: AdapterOptimizer;
  private readonly classTokens: TokenBatch;
  private cachedText: Tensor | null = null;

  constructor(
    readonly model: ClipModel,
    readonly adapters: AdapterSet,
    readonly classNames: readonly string[],
    readonly support: LabelledImages,
    readonly settings: TrainSettings,
    resumeFrom?: TrainerCheckpoint,
  ) {
    validateTrainSettings(settings);
    const indices = support.images.map((_, i) => i);
    this.sampler = resumeFrom
      ? BatchSampler.restore(indices, resumeFrom.sampler)
      : new BatchSampler(indices, settings.batchSize, settings.seed);
    this.rng = resumeFrom ? Rng.fromState(resumeFrom.rng) : Rng.derive(settings.seed, RNG_STREAM.training);
    this.classTokens = model.tokenize(promptsFor(classNames, settings.template, settings.classPrompts));
    adapters.allocateGradients();
    this.optimizer = new AdapterOptimizer(model.ctx, adapters, settings);
    if (resumeFrom) this.restore(resumeFrom);
  }

  get done(): boolean {
    return this.step >= this.settings.iterations;
  }

  learningRate(step = this.step): number {
    return learningRateAt(step, {
      baseLr: this.settings.lr,
      totalSteps: this.settings.iterations,
      warmupSteps: this.settings.warmupSteps,
      minLr: this.settings.minLr,
    });
  }

  /** One optimizer step over one batch (accumulated over micro-batches). */
  async trainStep(): Promise<StepLog> {
    const started = performance.now();
    const { model, adapters, settings } = this;
    const { ctx } = model;
    const batch = this.sampler.nextBatch();
    const crops = batch.map(() => this.augmentation());
    const microBatches = Math.ceil(batch.length / settings.microBatchSize);
    const options: StepOptions = {
      dropoutSeed: (Math.imul(settings.seed, 0x9e3779b1) + this.step) >>> 0,
      training: true,
      accumulationSteps: microBatches,
      textChunk: settings.textChunk,
    };
    if (!adapters.hasTower('text') && !this.cachedText)
      this.cachedText = frozenClassFeatures(model, this.classTokens, options);

    adapters.zeroGradients();
    let loss = 0;
    let correct = 0;
    for (let start = 0; start < batch.length; start += settings.microBatchSize) {
      const items = batch.slice(start, start + settings.microBatchSize);
      const images = items.map((i) => this.support.images[i]);
      const crop: CropChoice = (image, index) => crops[start + index](image);
      const pixels = preprocessBatch(ctx, images, model.preprocessor, crop);
      const result = await trainMicroBatch(
        model,
        adapters,
        pixels,
        items.map((i) => this.support.labels[i]),
        this.classTokens,
        { ...options, dropoutSeed: (options.dropoutSeed + Math.imul(start, 0x85ebca6b)) >>> 0 },
        this.cachedText,
      );
      pixels.destroy();
      loss += result.loss * items.length;
      correct += result.correct;
    }
    const lr = this.learningRate();
    this.optimizer.update(lr, this.step + 1);
    this.step++;
    await ctx.sync();
    return {
      step: this.step,
      loss: loss / batch.length,
      accuracy: correct / batch.length,
      lr,
      milliseconds: performance.now() - started,
    };
  }

  /** Accuracy, per-class accuracy and confusion matrix on labelled images, with the adapters on. */
  async evaluate(data: LabelledImages, withAdapters = true): Promise<Evaluation> {
    return evaluate(
      this.model,
      this.classNames,
      data,
      withAdapters ? this.adapters : null,
      this.settings.template,
      this.settings.classPrompts,
    );
  }

  async checkpoint(): Promise<TrainerCheckpoint> {
    const tensors = new Map<string, Float32Array>();
    const named = this.namedState();
    const values = await this.model.ctx.readMany(named.map((n) => n.tensor));
    named.forEach((n, i) => tensors.set(n.name, values[i]));
    return { step: this.step, tensors, sampler: this.sampler.state(), rng: this.rng.state() };
  }

  destroy(): void {
    this.optimizer.destroy();
    this.cachedText?.destroy();
    this.cachedText = null;
  }

  /** Puts a checkpoint's adapters, optimizer moments and step back (the constructor restores its sampler and random state). */
  restore(checkpoint: TrainerCheckpoint): void {
    const { ctx } = this.model;
    const load = (name: string, tensor: Tensor) => {
      const values = checkpoint.tensors.get(name);
      if (!values || values.length !== tensor.size)
        throw new RangeError(`checkpoint lacks ${name} or its size differs`);
      ctx.upload(tensor, values);
    };
    for (const { name, tensor } of this.namedState()) load(name, tensor);
    this.adapters.refreshSums();
    this.step = checkpoint.step;
  }

  /** What a checkpoint holds on the GPU: every adapter parameter, then the AdamW moments of each, by name. */
  private namedState(): { name: string; tensor: Tensor }[] {
    return [
      ...this.adapters.parameters().map(({ name, tensor }) => ({ name, tensor })),
      ...this.optimizer.namedState(),
    ];
  }

  /** Seeds this image's crop and flip now, so the random stream does not depend on micro-batching. */
  private augmentation(): (image: RgbaImage) => { box: CropBox; flip: boolean } {
    const size = this.model.preprocessor.size;
    if (!this.settings.augment) return (image) => evaluationCrop(size)(image, 0);
    const imageRng = new Rng(this.rng.nextUint32());
    return (image) => ({
      box: randomResizedCropBox(image.width, image.height, () => imageRng.next(), [0.08, 1]),
      flip: imageRng.next() < 0.5,
    });
  }
}

export async function evaluate(
  model: ClipModel,
  classNames: readonly string[],
  data: LabelledImages,
  adapters: AdapterSet | null,
  template = DEFAULT_TEMPLATE,
  classPrompts: ClassPrompts = {},
): Promise<Evaluation> {
  const embeddings = await classEmbeddings(model, classNames, [template], adapters, classPrompts);
  const predictions = (await classify(model, data.images, embeddings, { adapters })).map((p) => p.label);
  const classes = classNames.length;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  data.labels.forEach((label, i) => confusion[label][predictions[i]]++);
  const perClassAccuracy = confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total ? row[c] / total : 0;
  });
  const correct = confusion.reduce((sum, row, c) => sum + row[c], 0);
  return { accuracy: data.labels.length ? correct / data.labels.length : 0, perClassAccuracy, confusion, predictions };
}
