// The GPU memory a training step will need, measured without a GPU: the engine's own code (the
// Trainer, the step, the towers, the adapters, the kernels' scratch) runs on a zero-weight model on a
// dry-run device, which allocates nothing, and ctx.memory counts its buffers as it does on a GPU. Code
// that allocates more tomorrow is planned with it, as nothing here repeats what it allocates.

import { AdapterSet } from '../adapters/block-lora';
import { validateAdapterSettings, type AdapterSettings } from '../adapters/settings';
import { GpuError } from '../gpu/context';
import { createDryRunContext, type DryRunLimits } from '../gpu/dry-run';
import { ClipModel } from '../model/clip';
import type { ClipConfig } from '../model/config';
import type { WeightStorage } from '../model/weights';
import {
  autoPrecision,
  defaultTrainSettings,
  resolvePrecision,
  validatePasses,
  PRECISION_NUMERICS,
  type Precision,
  type PrecisionSetting,
  type ResolvedPrecision,
  type TrainSettings,
} from '../common/recipe';
import { Trainer } from './trainer';

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
  /** How the frozen weights are held (ClipWeights' storage). Default 'f32'. */
  weightStorage?: WeightStorage;
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
  validateTrainingOptions(config, options);
  const { microBatchSize, classes, textChunk } = options;
  const settings = defaultTrainSettings(1, {
    batchSize: microBatchSize,
    microBatchSize,
    textChunk,
    optimizer: options.optimizer,
    augment: false,
  });
  const { textPromptTokens: promptTokens, limits, weightStorage } = options;
  return dryRun(config, { promptTokens, limits, weightStorage }, async (model) => {
    const adapters = AdapterSet.create(model.ctx, config, options.adapter, { random: () => 0 });
    const images = Array.from({ length: microBatchSize }, () => ({ rgba: new Uint8Array(4), width: 1, height: 1 }));
    const classNames = Array.from({ length: classes }, (_, i) => `class ${i}`);
    const trainer = new Trainer(
      model,
      adapters,
      classNames,
      { images, labels: images.map((_, i) => i % classes) },
      settings,
    );
    await trainer.trainStep();
    model.ctx.memory.resetPeak();
    await trainer.trainStep();
  });
}

function validateTrainingOptions(config: ClipConfig, options: TrainingMemoryOptions): void {
  validatePasses(options);
  const { classes, textChunk } = options;
  for (const [name, value] of Object.entries({ classes, textChunk })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  validateAdapterSettings(options.adapter, config);
}

/** What a device allows: its buffer limits (GPUDevice.limits) and the bytes a run may hold at its peak. */
export interface DeviceMemory {
  limits: Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize'>;
  /** WebGPU does not say how much memory a GPU has: the caller decides (a setting, or memoryBudgetOf). */
  budgetBytes: number;
}

/**
 * The budget when the user sets none, in largest buffers. WebGPU tells no GPU's memory; maxBufferSize
 * is the one limit that grows with it, as browsers and drivers set it to a part of the memory (a
 * discrete GPU usually has several times its largest buffer, a shared-memory one at least twice). Two
 * buffers' worth plans a run that fits rather than one that fails mid-way; on a GPU with much more
 * memory it may choose smaller passes than needed, which only slows a run (the result is the same),
 * and the user can set the budget instead (the studio's GPU memory field).
 */
export const BUDGET_IN_LARGEST_BUFFERS = 2;

/** The device's memory for planning: budgetBytes when given (above 0), else BUDGET_IN_LARGEST_BUFFERS x maxBufferSize. */
export function deviceMemoryOf(limits: DeviceMemory['limits'], budgetBytes = 0): DeviceMemory {
  if (!(budgetBytes >= 0))
    throw new RangeError(`the GPU memory budget must be 0 (automatic) or more, got ${budgetBytes}`);
  return { limits, budgetBytes: budgetBytes || BUDGET_IN_LARGEST_BUFFERS * limits.maxBufferSize };
}

export interface PassSizes {
  microBatchSize: number;
  textChunk: number;
  plan: MemoryPlan;
}

export class TrainingDoesNotFitError extends Error {
  override name = 'TrainingDoesNotFitError';

  constructor(
    message: string,
    /** What fell short with the smallest passes: their peak over the budget, or a buffer over a device limit (the limit's message). */
    readonly shortfall: { peakBytes: number; budgetBytes: number } | { limit: string },
  ) {
    super(message);
  }
}

/** Bytes as MiB with one decimal, as the CLI and the worker's messages write them. */
export function mebibytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * The largest passes that fit the device, so that a run does not fail for memory when smaller ones
 * would fit: options.microBatchSize and options.textChunk are the largest wanted (the user's or the
 * recipe's). The micro-batch shrinks first, through the divisors of the batch; the text chunk is
 * halved only when no micro-batch fits with it, as its activations are small beside the vision
 * tower's (ViT-B/16: 64 prompts of 8 tokens are 512 tokens, under 3 images' 591) and a plan with
 * small chunks takes long (each chunk is a pass). A pass fits when no buffer passes the device's
 * limits and the planned peak is within the budget. Throws TrainingDoesNotFitError when even a
 * micro-batch of 1 with a text chunk of 1 does not fit, with what fell short. With keepMicroBatch (a
 * micro-batch the user chose), only the text chunk is chosen.
 */
export async function choosePassSizes(
  config: ClipConfig,
  options: Omit<TrainingMemoryOptions, 'limits'>,
  device: DeviceMemory,
  { keepMicroBatch = false } = {},
): Promise<PassSizes> {
  const { batchSize, microBatchSize: largestMicroBatch, textChunk: largestChunk } = options;
  const limits = {
    maxBufferSize: device.limits.maxBufferSize,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
  };
  validateTrainingOptions(config, options); // bad settings are refused, not searched for a size that fits
  const microBatches = keepMicroBatch ? [largestMicroBatch] : divisors(batchSize).filter((m) => m <= largestMicroBatch); // ascending
  let shortfall = { limit: '' } as TrainingDoesNotFitError['shortfall']; // of the last pass tried: the smallest, when none fits
  for (let textChunk = Math.min(largestChunk, options.classes); ; textChunk = Math.ceil(textChunk / 2)) {
    const fits = async (microBatchSize: number): Promise<PassSizes | null> => {
      try {
        const plan = await planTrainingMemory(config, { ...options, microBatchSize, textChunk, limits });
        if (plan.peakBytes <= device.budgetBytes) return { microBatchSize, textChunk, plan };
        shortfall = { peakBytes: plan.peakBytes, budgetBytes: device.budgetBytes };
      } catch (error) {
        if (!(error instanceof GpuError)) throw error;
        shortfall = { limit: error.message };
      }
      return null;
    };
    const chosen = await largestFitting(microBatches, fits);
    if (chosen) return chosen;
    if (textChunk === 1) break;
  }
  const what =
    'limit' in shortfall
      ? shortfall.limit
      : `its peak of ${shortfall.peakBytes} bytes is over the budget of ${shortfall.budgetBytes}`;
  throw new TrainingDoesNotFitError(
    `Training does not fit this GPU even with a micro-batch of ${microBatches[0]} and a text chunk of 1: ${what}`,
    shortfall,
  );
}

/**
 * Training settings with their passes sized for the device (choosePassSizes), their micro-batch and
 * text chunk being the largest wanted, and the precision its weights are held in: the one set, or
 * for 'auto' the recipe's rule (autoPrecision) on the passes each precision fits. What
 * the studio's worker and `octoclip train` both run with; the weights must be loaded in that precision.
 */
export async function fitTrainSettings(
  config: ClipConfig,
  adapter: AdapterSettings,
  training: TrainSettings,
  classes: number,
  device: DeviceMemory,
  {
    keepMicroBatch = false,
    precision: setting,
    f16TimeRatio = null,
  }: {
    keepMicroBatch?: boolean;
    precision: PrecisionSetting;
    /** f16 products' time over f32's in the device's matmul tune (f16TimeRatioOf), for 'auto'. */
    f16TimeRatio?: number | null;
  },
): Promise<{ training: TrainSettings; plan: MemoryPlan; precision: ResolvedPrecision }> {
  const { batchSize, microBatchSize, textChunk, optimizer } = training;
  // By weight storage: the memory is the weights' (f16 and f16-storage hold them alike).
  const attempts = new Map<WeightStorage, Promise<PassSizes>>();
  const passesFor = (precision: Precision) => {
    const { weightStorage } = PRECISION_NUMERICS[precision];
    let attempt = attempts.get(weightStorage);
    if (!attempt) {
      const options = { batchSize, microBatchSize, classes, adapter, textChunk, optimizer };
      attempt = choosePassSizes(config, { ...options, weightStorage }, device, { keepMicroBatch });
      attempts.set(weightStorage, attempt);
    }
    return attempt;
  };
  const fitsOrNull = (precision: Precision) =>
    passesFor(precision).catch((error: unknown) => {
      if (error instanceof TrainingDoesNotFitError) return null;
      throw error;
    });
  const resolved = await resolvePrecision(setting, async () => {
    const f32 = await fitsOrNull('f32');
    // Passes are at most the largest wanted: when f32 weights fit those, half-precision ones fit no larger.
    const largest = f32?.microBatchSize === microBatchSize && f32.textChunk === Math.min(textChunk, classes);
    return autoPrecision(f32, largest ? f32 : await fitsOrNull('f16-storage'), f16TimeRatio);
  });
  const passes = await passesFor(resolved.precision); // throws what fell short when nothing fits
  return {
    training: { ...training, microBatchSize: passes.microBatchSize, textChunk: passes.textChunk },
    plan: passes.plan,
    precision: resolved,
  };
}

/** The largest candidate (ascending) for which fits() gives a result, fits() being monotone: binary search, trying the largest first. */
async function largestFitting<T>(
  candidates: readonly number[],
  fits: (candidate: number) => Promise<T | null>,
): Promise<T | null> {
  const largest = await fits(candidates[candidates.length - 1]);
  if (largest) return largest;
  let best: T | null = null;
  let [low, high] = [0, candidates.length - 2]; // candidates above high do not fit
  while (low <= high) {
    const middle = Math.floor((low + high) / 2);
    const result = await fits(candidates[middle]);
    if (result) {
      best = result;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return best;
}

function divisors(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
}

export interface DryRunOptions {
  /** Every prompt the model tokenises runs to its end-of-text at this many tokens. Default DEFAULT_PROMPT_TOKENS. */
  promptTokens?: number;
  /** As TrainingMemoryOptions.limits. */
  limits?: DryRunLimits;
  /** As TrainingMemoryOptions.weightStorage. */
  weightStorage?: WeightStorage;
}

/**
 * Runs `work` on a model with zero weights on a dry-run device, and returns ctx.memory's peak (work
 * may reset it to measure one part) with what holds its bytes. For planning any use of the engine,
 * such as the benchmarks' reference steps.
 */
export async function dryRun(
  config: ClipConfig,
  options: DryRunOptions,
  work: (model: ClipModel) => Promise<void>,
): Promise<MemoryPlan> {
  const promptTokens = options.promptTokens ?? DEFAULT_PROMPT_TOKENS;
  const contextLength = config.text.maxPositions;
  if (!Number.isInteger(promptTokens) || promptTokens < 1 || promptTokens > contextLength) {
    throw new RangeError(`textPromptTokens must be an integer from 1 to ${contextLength}, got ${promptTokens}`);
  }
  const ctx = createDryRunContext(options.limits);
  ctx.memory.groupBy(holderOf);
  const tokenizer = {
    tokenize: (_text: string, length: number) => ({ ids: new Int32Array(length), eotIndex: promptTokens - 1 }),
  };
  await work(ClipModel.zeros(ctx, config, tokenizer, { weightStorage: options.weightStorage ?? 'f32' }));
  return { peakBytes: ctx.memory.peak, breakdown: ctx.memory.peakBreakdown() };
}

/**
 * What holds a buffer, from the label the engine gives it: the keys of MemoryPlan.breakdown. A label
 * no rule knows is its own holder, so that new allocations show up by name.
 */
function holderOf(label: string): string {
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
  [
    /^(vision|text)\.features$|^text\.features\.all$|^(image|text)\.(normalized|norms)$|^(logits|probs|losses|labels)$|^d_(logits|image|text)\b/,
    'features, logits and loss',
  ],
  [/^vision\.(backward\.|d_)/, 'vision backward'],
  [/^text\.(backward\.|d_)/, 'text backward'],
  [/^vision\./, 'vision activations'],
  [/^text\./, 'text activations'],
];
