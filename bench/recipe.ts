// Time to a trained adapter with the studio's default recipe: Block-LoRA r=2 n=2 (and LoRA r=2) on q, k,
// v of both towers, batch 32, AdamW, 500 x shots steps. A step is the Trainer's own (sampling, GPU
// augmentation, every micro-batch's forward and backward, the AdamW update), at the largest micro-batch
// choosePassSizes fits in the memory budget; the projection is that step's median time the recipe's
// number of steps over.

import { AdapterSet } from '../src/adapters/block-lora';
import { defaultAdapterSettings, type AdapterSettings } from '../src/adapters/settings';
import type { GpuContext } from '../src/gpu/context';
import type { ClipConfig } from '../src/model/config';
import { choosePassSizes } from '../src/training/memory-plan';
import { defaultTrainSettings, precisionOf, type Precision } from '../src/common/recipe';
import { Trainer } from '../src/training/trainer';
import type { BenchModel } from './clip-models';
import { fixed, printTable, progress, timeMedian, type RepeatPolicy, type Timing } from './measure';

/** The adapters the recipe compares: the studio's default, and plain LoRA of the same rank. */
export const RECIPE_METHODS: readonly { name: string; settings: Partial<AdapterSettings> }[] = [
  { name: 'Block-LoRA r=2 n=2', settings: {} },
  { name: 'LoRA r=2', settings: { method: 'lora' } },
];

export const RECIPE_CLASSES = [10, 100] as const;
export const RECIPE_SHOTS = [1, 4, 16] as const;

export interface RecipeResult extends Timing {
  scale: string;
  /** How the frozen weights are held (the model was loaded so). */
  precision: Precision;
  method: string;
  classes: number;
  batch: number;
  /** Chosen by choosePassSizes: the batch runs as batch / microBatch passes. */
  microBatch: number;
  textChunk: number;
  imagesPerSecond: number;
  /** Shots per class -> projected milliseconds of the recipe's steps (500 x shots). */
  msToAdapter: Record<number, number>;
}

/** Noise images at the model's input size: the crop and resize the Trainer's augmentation does are part of the step. */
function noiseImages(size: number, count: number) {
  let state = 7;
  return Array.from({ length: count }, () => {
    const rgba = new Uint8Array(size * size * 4);
    for (let i = 0; i < rgba.length; i++) rgba[i] = (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) >>> 24;
    return { rgba, width: size, height: size };
  });
}

async function benchOne(
  ctx: GpuContext,
  bench: BenchModel,
  method: (typeof RECIPE_METHODS)[number],
  classes: number,
  policy: RepeatPolicy,
  budgetBytes: number,
): Promise<RecipeResult> {
  const { model } = bench;
  const precision = precisionOf(model.weights);
  const config: ClipConfig = model.config;
  const adapter = defaultAdapterSettings(config, method.settings);
  const recipe = defaultTrainSettings(1);
  const passes = await choosePassSizes(
    config,
    {
      batchSize: recipe.batchSize,
      microBatchSize: recipe.microBatchSize,
      classes,
      adapter,
      textChunk: recipe.textChunk,
      optimizer: recipe.optimizer,
      weightStorage: model.weights.weightStorage,
    },
    { limits: ctx.device.limits, budgetBytes },
  );
  const settings = defaultTrainSettings(1, { microBatchSize: passes.microBatchSize, textChunk: passes.textChunk });
  const images = noiseImages(model.preprocessor.size, settings.batchSize);
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296;
  const adapters = AdapterSet.create(ctx, config, adapter, { random });
  const classNames = Array.from({ length: classes }, (_, i) => `class ${i}`);
  const trainer = new Trainer(
    model,
    adapters,
    classNames,
    { images, labels: images.map((_, i) => i % classes) },
    settings,
  );
  try {
    const timing = await timeMedian(async () => void (await trainer.trainStep()), policy);
    progress(
      `${bench.scale} ${precision} ${method.name}, ${classes} classes: ${timing.medianMs.toFixed(0)} ms a step (micro-batch ${passes.microBatchSize})`,
    );
    const msToAdapter = Object.fromEntries(
      RECIPE_SHOTS.map((shots) => [shots, defaultTrainSettings(shots).iterations * timing.medianMs]),
    );
    return {
      scale: bench.scale,
      precision,
      method: method.name,
      classes,
      batch: settings.batchSize,
      microBatch: passes.microBatchSize,
      textChunk: passes.textChunk,
      ...timing,
      imagesPerSecond: (1000 * settings.batchSize) / timing.medianMs,
      msToAdapter,
    };
  } finally {
    trainer.destroy();
    adapters.destroy();
  }
}

/** Every method at every class count, on one model. */
export async function benchRecipe(
  ctx: GpuContext,
  bench: BenchModel,
  policy: RepeatPolicy,
  budgetBytes: number,
): Promise<RecipeResult[]> {
  const results: RecipeResult[] = [];
  for (const classes of RECIPE_CLASSES) {
    for (const method of RECIPE_METHODS) results.push(await benchOne(ctx, bench, method, classes, policy, budgetBytes));
  }
  return results;
}

/** 1 h 23 min, 12 min 5 s, 41 s. */
export function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function printRecipe(results: readonly RecipeResult[]): void {
  printTable(
    [
      'scale',
      'precision',
      'adapter',
      'classes',
      'micro-batch',
      'step ms',
      'CPU ms',
      'images/s',
      ...RECIPE_SHOTS.map((s) => `${s} shot${s > 1 ? 's' : ''}`),
      'runs',
    ],
    results.map((r) => [
      r.scale,
      r.precision,
      r.method,
      `${r.classes}`,
      `${r.microBatch}/${r.batch}`,
      fixed(r.medianMs, 0),
      fixed(r.medianCpuMs, 0),
      fixed(r.imagesPerSecond, 1),
      ...RECIPE_SHOTS.map((s) => duration(r.msToAdapter[s])),
      `${r.repeats}`,
    ]),
    new Set([3, 4, 5, 6, 7, 8, 9, 10, 11]),
  );
  console.log(
    `(${RECIPE_SHOTS.map((s) => `${s} shot${s > 1 ? 's' : ''}: ${defaultTrainSettings(s).iterations} steps`).join(', ')} of batch 32; text chunk up to 64 classes)`,
  );
}
