// One training step of the real engine (trainMicroBatch: both towers forward, the loss, backward, the
// loss read back; then the AdamW update of the adapters), timed, with the allocator's peak bytes and the
// memory planner's prediction of them; and the text tower per class prompt with and without stopping at
// the end-of-text token.

import { AdapterSet } from '../src/adapters/block-lora';
import { defaultAdapterSettings, trainableParameterCount, type AdapterSettings } from '../src/adapters/settings';
import type { GpuContext, KernelTime } from '../src/gpu/context';
import type { TokenBatch } from '../src/model/text';
import { dryRun, planTrainingMemory, type MemoryPlan } from '../src/training/memory-plan';
import { AdapterOptimizer } from '../src/training/optimizer';
import { trainMicroBatch, type StepOptions } from '../src/training/step';
import { defaultTrainSettings } from '../src/common/recipe';
import type { BenchModel } from './clip-models';
import { medianTiming, progress, sample, timeMedian, type RepeatPolicy, type Sample } from './measure';

/**
 * The step's variants. The two references use the same engine code with an adapter set that holds no
 * adapter: 'frozen forward' names no tower, so nothing is recorded or back-propagated (the text tower
 * still runs over every class, as a step with text adapters must); 'forward + backward, no adapters'
 * names every layer of both towers, so the engine records and back-propagates through all of them
 * exactly as with adapters, but finds no adapter to run or to give a gradient.
 */
export type StepVariant =
  | { name: string; kind: 'frozen forward' }
  | { name: string; kind: 'forward + backward, no adapters' }
  | { name: string; kind: 'adapters'; settings: Partial<AdapterSettings> };

export const STEP_VARIANTS: readonly StepVariant[] = [
  { name: 'frozen forward', kind: 'frozen forward' },
  { name: 'forward + backward, no adapters', kind: 'forward + backward, no adapters' },
  { name: 'LoRA r=2', kind: 'adapters', settings: { method: 'lora', rank: 2 } },
  { name: 'Block-LoRA r=2 n=2', kind: 'adapters', settings: { method: 'block-lora', rank: 2, blocks: 2 } },
  { name: 'LoRA r=8', kind: 'adapters', settings: { method: 'lora', rank: 8 } },
  { name: 'Block-LoRA r=8 n=8', kind: 'adapters', settings: { method: 'block-lora', rank: 8, blocks: 8 } },
];

export interface StepShape {
  batch: number;
  classes: readonly string[];
  textChunk: number;
}

export interface StepResult {
  scale: string;
  step: string;
  batch: number;
  classes: number;
  textChunk: number;
  promptTokens: number;
  trainableParameters: number;
  medianMs: number;
  /** Process CPU time (see Timing.medianCpuMs). */
  medianCpuMs: number;
  repeats: number;
  measuredPeakBytes: number;
  planned: MemoryPlan;
  /** (planned - measured) / measured */
  planError: number;
}

/** Adapter settings on both towers, every layer, q/k/v (CLIP-LoRA's placement) with the variant's method and rank. */
function adapterSettings(bench: BenchModel, variant: StepVariant): AdapterSettings {
  const { config } = bench.model;
  if (variant.kind === 'adapters') return defaultAdapterSettings(config, variant.settings);
  // AdapterSet.create makes adapters for the layers its settings name: none. The engine decides what to
  // record and back-propagate from the settings' layers, which 'forward + backward' then sets to all.
  return { ...defaultAdapterSettings(config), layers: {} };
}

function createAdapterSet(ctx: GpuContext, bench: BenchModel, variant: StepVariant): AdapterSet {
  const { config } = bench.model;
  const settings = adapterSettings(bench, variant);
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296;
  const set = AdapterSet.create(ctx, config, settings, { random });
  if (variant.kind === 'forward + backward, no adapters') set.settings.layers = defaultAdapterSettings(config).layers;
  return set;
}

/**
 * The variant's planned peak: planTrainingMemory for adapters; for the references, which the Trainer
 * does not run, this benchmark's own step run dry (the same warm-up step, then the measured one).
 */
async function plan(
  bench: BenchModel,
  variant: StepVariant,
  shape: StepShape,
  classes: TokenBatch,
): Promise<MemoryPlan> {
  const { config } = bench.model;
  const textPromptTokens = Math.max(...classes.eotIndex) + 1;
  if (variant.kind === 'adapters') {
    return planTrainingMemory(config, {
      batchSize: shape.batch,
      microBatchSize: shape.batch,
      classes: shape.classes.length,
      textChunk: shape.textChunk,
      textPromptTokens,
      adapter: adapterSettings(bench, variant),
      optimizer: 'adamw',
    });
  }
  return dryRun(config, { promptTokens: textPromptTokens }, async (model) => {
    const prepared = prepareStep(model.ctx, { ...bench, model }, variant, shape, classes);
    await prepared.step();
    model.ctx.memory.resetPeak();
    await prepared.step();
  });
}

/** One variant's adapters, optimizer moments and pixels, and its training step. */
interface PreparedStep {
  adapters: AdapterSet;
  step(): Promise<void>;
  destroy(): void;
}

function prepareStep(
  ctx: GpuContext,
  bench: BenchModel,
  variant: StepVariant,
  shape: StepShape,
  classes: TokenBatch,
): PreparedStep {
  const { model } = bench;
  const size = model.config.vision.imageSize;
  const adapters = createAdapterSet(ctx, bench, variant);
  adapters.allocateGradients();
  const optimizer = new AdapterOptimizer(ctx, adapters, defaultTrainSettings(1)); // CLIP-LoRA's AdamW
  const pixels = ctx.tensor(
    [shape.batch, 3, size, size],
    'pixel_values',
    Float32Array.from({ length: shape.batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37)),
  );
  const labels = Array.from({ length: shape.batch }, (_, i) => i % shape.classes.length);
  let stepIndex = 0;
  return {
    adapters,
    async step() {
      stepIndex++;
      const options: StepOptions = {
        dropoutSeed: stepIndex,
        training: true,
        accumulationSteps: 1,
        textChunk: shape.textChunk,
      };
      adapters.zeroGradients();
      await trainMicroBatch(model, adapters, pixels, labels, classes, options, null);
      optimizer.update(2e-4, stepIndex);
      await ctx.sync();
    },
    destroy() {
      pixels.destroy();
      optimizer.destroy();
      adapters.destroy();
    },
  };
}

/**
 * How long timing goes on after each variant's measured step: interleaved rounds (one step of every
 * variant per round, so that a busy machine slows them alike) while they fit in budgetMs.
 */
export interface RoundsPolicy {
  budgetMs: number;
  maxRounds: number;
}

/**
 * First each variant alone: a warm-up step (pipelines compile, the attention scratch grows to its steady
 * size), then one step whose peak bytes, from what is held before it (weights, adapters, gradients,
 * moments, pixels, the attention scratch), is what the plan predicts; that step is the first time
 * sample. Then rounds of one step per variant, interleaved; the median per variant.
 */
export async function benchTrainingSteps(
  ctx: GpuContext,
  bench: BenchModel,
  shape: StepShape,
  policy: RoundsPolicy,
  variants: readonly StepVariant[] = STEP_VARIANTS,
): Promise<StepResult[]> {
  const { config } = bench.model;
  const classes = bench.prompts(shape.classes);
  const promptTokens = Math.max(...classes.eotIndex) + 1;
  const measured: { variant: StepVariant; samples: Sample[]; peakBytes: number; trainable: number }[] = [];
  for (const variant of variants) {
    const prepared = prepareStep(ctx, bench, variant, shape, classes);
    await prepared.step();
    ctx.memory.resetPeak();
    const first = await sample(prepared.step);
    measured.push({
      variant,
      samples: [first],
      peakBytes: ctx.memory.peak,
      trainable: variant.kind === 'adapters' ? trainableParameterCount(config, prepared.adapters.settings) : 0,
    });
    progress(
      `${bench.scale} ${variant.name}: ${first.wallMs.toFixed(0)} ms (CPU ${first.cpuMs.toFixed(0)} ms), peak ${ctx.memory.peak} B`,
    );
    prepared.destroy();
  }

  const roundMs = measured.reduce((sum, m) => sum + m.samples[0].wallMs, 0);
  const rounds = Math.min(policy.maxRounds, Math.floor(policy.budgetMs / roundMs));
  if (rounds > 0) {
    const all = variants.map((variant) => prepareStep(ctx, bench, variant, shape, classes));
    for (const prepared of all) await prepared.step(); // warm the new tensors
    for (let round = 0; round < rounds; round++) {
      for (const [i, prepared] of all.entries()) measured[i].samples.push(await sample(prepared.step));
    }
    all.forEach((prepared) => prepared.destroy());
    progress(`${bench.scale}: ${rounds} interleaved rounds`);
  }

  const results: StepResult[] = [];
  for (const { variant, samples, peakBytes, trainable } of measured) {
    const planned = await plan(bench, variant, shape, classes);
    results.push({
      scale: bench.scale,
      step: variant.name,
      batch: shape.batch,
      classes: shape.classes.length,
      textChunk: shape.textChunk,
      promptTokens,
      trainableParameters: trainable,
      ...medianTiming(samples),
      measuredPeakBytes: peakBytes,
      planned,
      planError: (planned.peakBytes - peakBytes) / peakBytes,
    });
  }
  return results;
}

/** Where one step's GPU time goes: per shader entry point, its dispatches and GPU milliseconds. */
export interface StepProfile {
  scale: string;
  step: string;
  /** The step's GPU time with a pass per dispatch (slower than the timed steps above). */
  gpuMs: number;
  dispatches: number;
  byKernel: Record<string, KernelTime>;
}

/**
 * One step of each variant after a warm-up step, with a compute pass and a pair of timestamps per
 * dispatch (GpuContext.time's perKernel). Null where the adapter has no timestamp queries.
 */
export async function profileTrainingSteps(
  ctx: GpuContext,
  bench: BenchModel,
  shape: StepShape,
  variants: readonly StepVariant[] = STEP_VARIANTS,
): Promise<StepProfile[] | null> {
  if (!ctx.canTime) return null;
  const classes = bench.prompts(shape.classes);
  const profiles: StepProfile[] = [];
  for (const variant of variants) {
    const prepared = prepareStep(ctx, bench, variant, shape, classes);
    await prepared.step();
    const { gpuMs, byKernel } = await ctx.time(() => prepared.step(), { perKernel: true });
    prepared.destroy();
    if (gpuMs === null || byKernel === null) return null; // more passes than the query set holds
    const kernels = Object.fromEntries(byKernel);
    const dispatches = [...byKernel.values()].reduce((total, k) => total + k.dispatches, 0);
    profiles.push({ scale: bench.scale, step: variant.name, gpuMs, dispatches, byKernel: kernels });
    progress(`${bench.scale} ${variant.name}: ${dispatches} dispatches, ${gpuMs.toFixed(1)} GPU ms profiled`);
  }
  return profiles;
}

export interface TextPromptResult {
  scale: string;
  prompts: number;
  /** Tokens the early-stopping pass runs (the longest prompt, to its end-of-text). */
  stoppedTokens: number;
  contextTokens: number;
  stoppedMsPerPrompt: number;
  fullMsPerPrompt: number;
  stoppedCpuMsPerPrompt: number;
  fullCpuMsPerPrompt: number;
  repeats: { stopped: number; full: number };
}

/** The frozen text tower over class prompts: stopping at end-of-text (the default) against all 77 positions. */
export async function benchTextPerPrompt(
  ctx: GpuContext,
  bench: BenchModel,
  classNames: readonly string[],
  policies: { stopped: RepeatPolicy; full: RepeatPolicy },
): Promise<TextPromptResult> {
  const { model } = bench;
  const tokens = bench.prompts(classNames);
  const pass = (stopAtEndOfText: boolean) => async () => {
    const features = model.textFeatures(tokens, null, { stopAtEndOfText });
    await ctx.sync();
    features.destroy();
  };
  const stopped = await timeMedian(pass(true), policies.stopped);
  // The same pipelines at another size: the stopped pass's warm-up compiled them.
  const full = await timeMedian(pass(false), policies.full, { warmUp: false });
  progress(
    `${bench.scale} text tower: ${(stopped.medianMs / classNames.length).toFixed(1)} ms/prompt stopped, ${(full.medianMs / classNames.length).toFixed(1)} full`,
  );
  return {
    scale: bench.scale,
    prompts: classNames.length,
    stoppedTokens: Math.max(...tokens.eotIndex) + 1,
    contextTokens: model.config.text.maxPositions,
    stoppedMsPerPrompt: stopped.medianMs / classNames.length,
    fullMsPerPrompt: full.medianMs / classNames.length,
    stoppedCpuMsPerPrompt: stopped.medianCpuMs / classNames.length,
    fullCpuMsPerPrompt: full.medianCpuMs / classNames.length,
    repeats: { stopped: stopped.repeats, full: full.repeats },
  };
}
