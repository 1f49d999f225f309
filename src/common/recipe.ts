// CLIP-LoRA's recipe (Zanella and Ben Ayed, 2024), with Block-LoRA n = 2: the defaults that the studio's
// form, the worker, the CLI's options and its help text all derive from, and the rules that tie settings
// together. Plain data, no GPU: change a default here and every one of them follows.

import { DEFAULT_TEMPLATE, type ClassPrompts } from './prompts';

export type AdapterMethod = 'block-lora' | 'lora';
export type Tower = 'text' | 'vision';
export type TargetMatrix = 'q_proj' | 'k_proj' | 'v_proj' | 'out_proj' | 'fc1' | 'fc2';
export type ScalingRule = 'alpha/sqrt(r)' | 'alpha/r';

export const TOWERS: readonly Tower[] = ['text', 'vision'];
export const TARGET_MATRICES: readonly TargetMatrix[] = ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'];

/** LoRA is Block-LoRA with one block. */
export const LORA_BLOCKS = 1;

/** What a run chooses about its adapters; the layers follow from the towers (all of theirs) and the model. */
export interface AdapterChoice {
  method: AdapterMethod;
  rank: number;
  /** n: the rank splits into n blocks of r/n that share one down-projection. LoRA has n = 1. */
  blocks: number;
  alpha: number;
  scalingRule: ScalingRule;
  /** Dropout probability on the adapter's input. */
  dropout: number;
  targets: TargetMatrix[];
  towers: Tower[];
}

/** The adapters: r = 2, n = 2 on q, k and v of every layer of both towers, alpha = 1, s = alpha/sqrt(r), dropout 0.25. */
export const RECIPE_ADAPTER: Readonly<Omit<AdapterChoice, 'targets' | 'towers'>> & {
  targets: readonly TargetMatrix[];
  towers: readonly Tower[];
} = {
  method: 'block-lora',
  rank: 2,
  blocks: 2,
  alpha: 1,
  scalingRule: 'alpha/sqrt(r)',
  dropout: 0.25,
  targets: ['q_proj', 'k_proj', 'v_proj'],
  towers: TOWERS,
};

/** The blocks a method trains with: LoRA always has one, Block-LoRA the n asked for. */
export function blocksFor(method: AdapterMethod, blocks: number): number {
  return method === 'lora' ? LORA_BLOCKS : blocks;
}

/** CLIP-LoRA trains 500 iterations per shot. */
export const ITERATIONS_PER_SHOT = 500;

export function recipeIterations(shots: number): number {
  return ITERATIONS_PER_SHOT * shots;
}

/** The held-out fraction "use my images" starts with (train on 85%, as `octoclip train --holdout 0.15`). */
export const STARTING_HOLDOUT = 0.15;

/** The time budgets the studio offers, in minutes ("about 5 / 15 / 60 minutes on this GPU"). */
export const TIME_BUDGET_MINUTES: readonly number[] = [5, 15, 60];

/**
 * The iterations that fit a time budget at a measured step time: the run keeps the recipe's schedule
 * (cosine over all its iterations), only its length changes. At least one step.
 */
export function budgetIterations(budgetMilliseconds: number, millisecondsPerStep: number): number {
  if (!(budgetMilliseconds > 0)) throw new RangeError(`the time budget must be above 0, got ${budgetMilliseconds} ms`);
  if (!(millisecondsPerStep > 0)) throw new RangeError(`the step time must be above 0, got ${millisecondsPerStep} ms`);
  return Math.max(1, Math.floor(budgetMilliseconds / millisecondsPerStep));
}

/** "15m", "90s", "1h", "1.5h" or a bare number of minutes, in milliseconds; a RangeError for anything else. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$/.exec(text);
  const unitMilliseconds = { s: 1000, m: 60_000, min: 60_000, h: 3_600_000 } as const;
  const value = match ? Number(match[1]) * unitMilliseconds[(match[2] ?? 'm') as keyof typeof unitMilliseconds] : NaN;
  if (!(value > 0)) throw new RangeError(`a time budget is a positive duration such as 15m, 90s or 1h, got "${text}"`);
  return value;
}

/** Early stopping's patience, in held-out evaluations: CLIP-LoRA trains every iteration (0: off). */
export const RECIPE_PATIENCE = 0;

/** Steps between the checkpoints a run saves (the studio's store, the CLI's --checkpoint file). */
export const RECIPE_CHECKPOINT_EVERY = 50;

/**
 * How a run holds the frozen CLIP weights and multiplies by them. 'f32': 32-bit floats, nothing rounded.
 * 'f16-storage': the weights as 16-bit floats (pairs in a u32), widened to f32 in the kernels, which
 * compute and accumulate in f32: half the weight memory, the weights rounded once as they load. 'f16':
 * f16-storage, and the linear layers' and attention's products in 16-bit floats (summed in f32, the
 * matmul's 4 at a time in f16 first), on adapters with shader-f16; layer norms, softmax and loss stay f32. Adapters,
 * their gradients and the optimizer are f32 at every precision, so an adapter trained at one is used at any.
 */
export type Precision = 'f32' | 'f16-storage' | 'f16';
/** The setting: a precision, or 'auto' (autoPrecision). */
export type PrecisionSetting = 'auto' | Precision;

/** What the studio's select and `--precision` offer, in this order. */
export const PRECISION_SETTINGS: readonly PrecisionSetting[] = ['auto', 'f32', 'f16-storage', 'f16'];

export const RECIPE_PRECISION: PrecisionSetting = 'auto';

/** One line per setting: the studio's select and the CLI's help. */
export const PRECISION_HELP: Readonly<Record<PrecisionSetting, string>> = {
  auto: "f16 where this GPU's f16 products measured 10% faster than f32, else f32, or f16-storage when half-precision weights fit larger passes",
  f32: 'weights and arithmetic in 32-bit floats: nothing rounded',
  'f16-storage': 'weights stored in 16-bit floats, arithmetic in 32-bit: half the weight memory',
  f16: "as f16-storage, and the linear layers' and attention's products in 16-bit floats (needs the GPU's shader-f16)",
};

/** What a precision needs of the device beyond core WebGPU; null: nothing. */
export function precisionNeeds(precision: Precision): 'shader-f16' | null {
  return PRECISION_NUMERICS[precision].arithmetic === 'f16' ? 'shader-f16' : null;
}

/**
 * The feature a setting needs that a device with these features lacks, or null: the one check of the
 * CLI, the worker, the studio's select and the bench. 'auto' needs nothing (it picks f16 only where measured).
 */
export function missingFeature(setting: PrecisionSetting, features: Iterable<string>): 'shader-f16' | null {
  const needed = setting === 'auto' ? null : precisionNeeds(setting);
  return needed !== null && !new Set(features).has(needed) ? needed : null;
}

/** A precision setting from its name; a RangeError saying what is offered otherwise. */
export function parsePrecision(text: string): PrecisionSetting {
  const setting = PRECISION_SETTINGS.find((candidate) => candidate === text);
  if (!setting) throw new RangeError(`the precision must be ${PRECISION_SETTINGS.join(', ')}, got "${text}"`);
  return setting;
}

/** The passes a run takes (images per pass, prompts per text-tower pass), as the planner fits them. */
export interface Passes {
  microBatchSize: number;
  textChunk: number;
}

export interface ResolvedPrecision {
  precision: Precision;
  /** Why, in a few words: 'as set', or the passes each precision fits. */
  reason: string;
}

/** 'auto' takes f16 where the matmul tune measured f16 products in at most this fraction of f32's time. */
export const AUTO_F16_TIME_RATIO = 0.9;

/**
 * 'auto': f16 where the device's matmul tune measured f16 products at least 10% faster than f32 ones
 * (f16TimeRatio, null where the device has no shader-f16) and half-precision weights fit a pass: the
 * speed was measured, and f16's weights take f16-storage's memory. Otherwise full precision, unless
 * half-precision weights let the planner fit larger passes than f32 weights do (a larger micro-batch,
 * or with equal ones a larger text chunk; null: none fits), as on a GPU short of memory: there
 * f16-storage trains in fewer passes. No speed is claimed for that.
 */
export function autoPrecision(
  f32: Passes | null,
  f16Storage: Passes | null,
  f16TimeRatio: number | null = null,
): ResolvedPrecision {
  if (f16TimeRatio !== null && f16TimeRatio <= AUTO_F16_TIME_RATIO && f16Storage !== null) {
    const percent = Math.round(100 * f16TimeRatio);
    return { precision: 'f16', reason: `auto: f16 products took ${percent}% of f32's time in this GPU's matmul tune` };
  }
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const describe = (passes: Passes | null) =>
    passes ? `${count(passes.microBatchSize, 'image')} and ${count(passes.textChunk, 'prompt')} per pass` : 'no pass';
  const larger =
    f16Storage !== null &&
    (f32 === null ||
      f16Storage.microBatchSize > f32.microBatchSize ||
      (f16Storage.microBatchSize === f32.microBatchSize && f16Storage.textChunk > f32.textChunk));
  return larger
    ? {
        precision: 'f16-storage',
        reason: `auto: half-precision weights fit ${describe(f16Storage)}, f32 weights ${describe(f32)}`,
      }
    : { precision: 'f32', reason: `auto: f32 weights fit ${describe(f32)}, as large as half-precision ones` };
}

/** A setting that names a precision keeps it; 'auto' is what `auto()` decides (which may plan). */
export async function resolvePrecision(
  setting: PrecisionSetting,
  auto: () => Promise<ResolvedPrecision>,
): Promise<ResolvedPrecision> {
  return setting === 'auto' ? auto() : { precision: setting, reason: 'as set' };
}

/** 'auto' where nothing is planned (inference: no pass is sized to the memory): full precision. */
export const AUTO_WITHOUT_PLAN: ResolvedPrecision = { precision: 'f32', reason: 'auto: f32 when not training' };

/** How a model holds its frozen weights and multiplies by them: ClipWeights' load options. */
export interface WeightNumerics {
  weightStorage: 'f32' | 'f16';
  arithmetic: 'f32' | 'f16';
}

/** How each precision holds the frozen weights and multiplies by them. */
export const PRECISION_NUMERICS = {
  f32: { weightStorage: 'f32', arithmetic: 'f32' },
  'f16-storage': { weightStorage: 'f16', arithmetic: 'f32' },
  f16: { weightStorage: 'f16', arithmetic: 'f16' },
} as const satisfies Record<Precision, WeightNumerics>;

/** The precision of weights held and multiplied so. */
export function precisionOf({ weightStorage, arithmetic }: WeightNumerics): Precision {
  const precisions = Object.keys(PRECISION_NUMERICS) as Precision[];
  const found = precisions.find(
    (p) => PRECISION_NUMERICS[p].weightStorage === weightStorage && PRECISION_NUMERICS[p].arithmetic === arithmetic,
  );
  if (!found) throw new RangeError(`no precision holds weights in ${weightStorage} and multiplies in ${arithmetic}`);
  return found;
}

export interface TrainSettings {
  seed: number;
  iterations: number;
  batchSize: number;
  /** Images per forward/backward; the batch is accumulated over batchSize / microBatchSize passes. */
  microBatchSize: number;
  optimizer: 'adamw' | 'sgd';
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Random resized crop (scale 0.08 to 1) and horizontal flip. */
  augment: boolean;
  /** Evaluate on the held-out images every this many steps (0: only before and after training). */
  evalEvery: number;
  textChunk: number;
  /** The class prompt, "{}" standing for the class name. */
  template: string;
  /** Classes with their own prompt text instead of the template's, by class name. */
  classPrompts: ClassPrompts;
}

/** Training: AdamW 2e-4 (as torch's, wd 1e-2), cosine to 1e-6 without warm-up, batch 32, augmentation. */
export const RECIPE_TRAINING: Readonly<Omit<TrainSettings, 'iterations'>> = {
  seed: 1,
  batchSize: 32,
  microBatchSize: 32,
  optimizer: 'adamw',
  lr: 2e-4,
  minLr: 1e-6,
  warmupSteps: 0,
  weightDecay: 1e-2,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  augment: true,
  evalEvery: 0,
  textChunk: 64,
  template: DEFAULT_TEMPLATE,
  classPrompts: {},
};

/** The recipe's training settings for `shots` shots, with overrides; a batch given without a micro-batch is one pass. */
export function defaultTrainSettings(shots: number, overrides: Partial<TrainSettings> = {}): TrainSettings {
  const given = definedOnly(overrides);
  const batchSize = given.batchSize ?? RECIPE_TRAINING.batchSize;
  const settings: TrainSettings = {
    ...RECIPE_TRAINING,
    iterations: recipeIterations(shots),
    microBatchSize: batchSize,
    ...given,
  };
  validateTrainSettings(settings);
  return settings;
}

/** Throws a RangeError, worded for the user, when the settings cannot train. */
export function validateTrainSettings(settings: TrainSettings): void {
  wholeNumber(settings.iterations, 'iterations');
  validatePasses(settings);
  if (!(settings.lr > 0)) throw new RangeError('the learning rate must be above 0');
}

/** The batch is accumulated over whole micro-batches: both whole numbers, the micro-batch dividing the batch. */
export function validatePasses({
  batchSize,
  microBatchSize,
}: Pick<TrainSettings, 'batchSize' | 'microBatchSize'>): void {
  wholeNumber(batchSize, 'the batch size');
  wholeNumber(microBatchSize, 'the micro-batch size');
  if (batchSize % microBatchSize !== 0) {
    throw new RangeError(
      `the batch size (${batchSize}) must be a multiple of the micro-batch size (${microBatchSize})`,
    );
  }
}

function wholeNumber(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a whole number of at least 1`);
}

/** The overrides that are given: an absent command-line flag (undefined) keeps the default. */
export function definedOnly<T extends object>(overrides: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined)) as Partial<T>;
}
