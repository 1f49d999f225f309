// `octoclip train`: its options table and logging around the one training driver (src/training/run.ts).
// Every default, and the help that states it, comes from CLIP-LoRA's recipe.

import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { peftExportFiles } from '../adapters/peft';
import { allLayers, defaultAdapterSettings, trainableParameterCount, type AdapterSettings } from '../adapters/settings';
import {
  budgetIterations,
  defaultTrainSettings,
  ITERATIONS_PER_SHOT,
  parseDuration,
  parsePrecision,
  LORA_BLOCKS,
  RECIPE_ADAPTER,
  RECIPE_CHECKPOINT_EVERY,
  RECIPE_PATIENCE,
  RECIPE_TRAINING,
  TARGET_MATRICES,
  TOWERS,
  type AdapterMethod,
  type ScalingRule,
  type TargetMatrix,
  type Tower,
  type TrainSettings,
} from '../common/recipe';
import { checkPrompts } from '../common/prompts';
import { f16TimeRatioOf } from '../kernels/matmul-tune';
import type { ClipModel } from '../model/clip';
import type { ClipConfig } from '../model/config';
import { decodeTensor, encodeSafetensors, parseSafetensorsHeader } from '../model/safetensors';
import { BUDGET_IN_LARGEST_BUFFERS, deviceMemoryOf, fitTrainSettings, mebibytes } from '../training/memory-plan';
import { measureStepTime, runTraining } from '../training/run';
import type { Evaluation, LabelledImages, StepLog, TrainerCheckpoint } from '../training/trainer';
import { loadLabelledImages, type LabelledImageSet } from './images';
import { emit, loadWeights, log, openModelOnDevice, readAdapterFor, resultHeader, writeFileAtomic } from './io';
import {
  defineCommand,
  MODEL_OPTION,
  PRECISION_OPTION,
  UsageError,
  type OptionTable,
  type OptionValues,
} from './options';
import { checkSplitOptions, SPLIT_OPTIONS, splitOf } from './split-options';

/** A number as the help writes it: 2e-4 rather than 0.0002, 0.25 rather than 2.5e-1. */
function shortNumber(value: number): string {
  const plain = String(value);
  const exponent = value.toExponential().replace('e+', 'e');
  return exponent.length < plain.length ? exponent : plain;
}

const R = RECIPE_ADAPTER;
const T = RECIPE_TRAINING;
const otherTargets = TARGET_MATRICES.filter((target) => !R.targets.includes(target));

/**
 * `octoclip train`'s options. A default that depends on other settings (blocks on the method, iterations on
 * the shots, the micro-batch on the batch) is stated in the help and applied by the recipe.
 */
export const TRAIN_OPTIONS = {
  model: MODEL_OPTION,
  images: { kind: 'string', value: 'DIR', required: true, exists: 'dir', help: 'one sub-folder of images per class' },
  ...SPLIT_OPTIONS,
  out: {
    kind: 'string',
    value: 'ADAPTER',
    required: true,
    help: 'the adapter file to write (whole, through a temporary name)',
  },
  method: { kind: 'string', value: 'M', choices: ['block-lora', 'lora'], default: R.method, help: 'adapter kind' },
  rank: { kind: 'integer', value: 'R', min: 1, default: R.rank, help: 'rank r' },
  blocks: {
    kind: 'integer',
    value: 'N',
    min: 1,
    help: `Block-LoRA blocks n, dividing r (default ${R.blocks}; lora: ${LORA_BLOCKS})`,
  },
  alpha: { kind: 'number', value: 'A', default: R.alpha, help: 'alpha of the scaling' },
  scaling: {
    kind: 'string',
    value: 'RULE',
    choices: ['alpha/sqrt(r)', 'alpha/r'],
    default: R.scalingRule,
    help: 'the scaling s',
  },
  targets: {
    kind: 'string',
    value: 'LIST',
    default: R.targets.join(','),
    help: `adapted matrices, comma-separated (also ${otherTargets.join(', ')})`,
  },
  towers: {
    kind: 'string',
    value: 'LIST',
    default: R.towers.join(','),
    help: 'towers carrying adapters, every layer (text, vision)',
  },
  dropout: {
    kind: 'number',
    value: 'P',
    min: 0,
    max: 0.999,
    default: shortNumber(R.dropout),
    help: 'adapter input dropout',
  },
  'no-dropout': { kind: 'boolean', help: 'dropout 0' },
  iterations: { kind: 'integer', value: 'N', min: 1, help: `optimizer steps (default ${ITERATIONS_PER_SHOT} x shots)` },
  'time-budget': {
    kind: 'string',
    value: 'D',
    help: 'instead of --iterations: as many steps as fit in D (15m, 90s, 1h) at the step time measured on this device before the run, same schedule shape',
  },
  'batch-size': { kind: 'integer', value: 'B', min: 1, default: T.batchSize, help: 'images per optimizer step' },
  'micro-batch': {
    kind: 'integer',
    value: 'M',
    min: 1,
    help: `images per pass; B/M passes accumulate into a step (default: the largest that fits ${BUDGET_IN_LARGEST_BUFFERS} x the device's maxBufferSize)`,
  },
  precision: PRECISION_OPTION,
  lr: { kind: 'number', value: 'LR', default: shortNumber(T.lr), help: 'peak learning rate, cosine to --min-lr' },
  'min-lr': {
    kind: 'number',
    value: 'LR',
    min: 0,
    default: shortNumber(T.minLr),
    help: 'learning rate at the end of the cosine',
  },
  warmup: { kind: 'integer', value: 'N', min: 0, default: T.warmupSteps, help: 'linear warm-up steps' },
  'weight-decay': {
    kind: 'number',
    value: 'WD',
    min: 0,
    default: shortNumber(T.weightDecay),
    help: 'AdamW weight decay',
  },
  optimizer: { kind: 'string', value: 'O', choices: ['adamw', 'sgd'], default: T.optimizer, help: 'optimizer' },
  'no-augment': { kind: 'boolean', help: 'no random resized crop and flip (centre crop instead)' },
  template: { kind: 'string', value: 'T', default: T.template, help: 'class prompt template, {} is the class name' },
  prompts: {
    kind: 'string',
    value: 'FILE',
    exists: 'file',
    help: 'JSON {"class name": "prompt"}: those classes\' own prompts instead of the template',
  },
  init: {
    kind: 'string',
    value: 'ADAPTER',
    exists: 'file',
    help: "start from this adapter's weights instead of the random init",
  },
  'eval-every': {
    kind: 'integer',
    value: 'N',
    min: 0,
    default: T.evalEvery,
    help: 'held-out evaluation every N steps (0: at the start and the end)',
  },
  'early-stop': {
    kind: 'integer',
    value: 'K',
    min: 0,
    default: RECIPE_PATIENCE,
    help: "stop after K evaluations without a better held-out accuracy, keeping the best one's adapter (needs --eval-every; 0: never)",
  },
  checkpoint: {
    kind: 'string',
    value: 'FILE',
    help: 'save adapter, optimizer, sampler and random state there every --checkpoint-every steps',
  },
  'checkpoint-every': {
    kind: 'integer',
    value: 'N',
    min: 1,
    default: RECIPE_CHECKPOINT_EVERY,
    help: 'checkpoint interval',
  },
  resume: {
    kind: 'string',
    value: 'FILE',
    exists: 'file',
    help: 'continue a run from its checkpoint (same data and settings)',
  },
  log: { kind: 'string', value: 'FILE', help: 'write the JSON log there instead of stdout' },
  peft: {
    kind: 'string',
    value: 'DIR',
    help: "also write the self-contained PEFT export (octoclip export --format peft's) to DIR",
  },
} as const satisfies OptionTable;

type TrainValues = OptionValues<typeof TRAIN_OPTIONS>;

/** The run's settings from the command line: the recipe, changed only by the flags given. */
export function trainSettingsFromOptions(values: TrainValues, config: ClipConfig, shots: number) {
  const towers = values.towers.split(',') as Tower[];
  for (const tower of towers)
    if (!TOWERS.includes(tower)) throw new UsageError(`unknown tower ${tower}; choose from ${TOWERS.join(', ')}`);
  const targets = values.targets
    .split(',')
    .map((t) => (t.endsWith('_proj') || t.startsWith('fc') ? t : `${t}_proj`)) as TargetMatrix[];
  for (const t of targets)
    if (!TARGET_MATRICES.includes(t))
      throw new UsageError(`unknown target ${t}; choose from ${TARGET_MATRICES.join(', ')}`);
  const adapter: AdapterSettings = defaultAdapterSettings(config, {
    method: values.method as AdapterMethod,
    rank: values.rank,
    blocks: values.blocks,
    alpha: values.alpha,
    scalingRule: values.scaling as ScalingRule,
    dropout: values['no-dropout'] ? 0 : values.dropout,
    targets,
    layers: allLayers(config, towers),
  });
  const training: TrainSettings = defaultTrainSettings(shots, {
    seed: values.seed,
    iterations: values.iterations,
    batchSize: values['batch-size'],
    microBatchSize: values['micro-batch'],
    lr: values.lr,
    minLr: values['min-lr'],
    warmupSteps: values.warmup,
    weightDecay: values['weight-decay'],
    optimizer: values.optimizer as TrainSettings['optimizer'],
    augment: !values['no-augment'],
    evalEvery: values['eval-every'],
    template: values.template,
  });
  return { adapter, training, checkpointEvery: values['checkpoint-every'], patience: values['early-stop'] };
}

export const TRAIN = defineCommand({
  name: 'train',
  summary: 'few-shot fine-tuning with Block-LoRA or LoRA; JSON log per step',
  options: TRAIN_OPTIONS,
  check(values) {
    if (values.lr <= 0) return `--lr must be above 0, got ${values.lr}`;
    if (values.lr < values['min-lr']) return `--lr ${values.lr} is below --min-lr ${values['min-lr']}`;
    if (values['early-stop'] > 0 && !values['eval-every'])
      return '--early-stop needs --eval-every: it counts held-out evaluations';
    if (values['time-budget'] !== undefined && values.iterations !== undefined)
      return 'give one of --iterations and --time-budget';
    return checkSplitOptions(values);
  },
  notes:
    "The defaults are CLIP-LoRA's recipe (Block-LoRA r = 2, n = 2 on q, k, v of both towers, AdamW, cosine, batch 32).",
  run: train,
});

function subset(data: LabelledImageSet, indices: number[]): LabelledImages {
  return { images: indices.map((i) => data.images[i]), labels: indices.map((i) => data.labels[i]) };
}

function summarize(evaluation: Evaluation, classNames: readonly string[]) {
  return {
    accuracy: evaluation.accuracy,
    perClassAccuracy: Object.fromEntries(classNames.map((name, c) => [name, evaluation.perClassAccuracy[c]])),
    confusion: evaluation.confusion,
  };
}

const percent = (fraction: number) => `${(100 * fraction).toFixed(1)}%`;

async function train(values: TrainValues): Promise<void> {
  const out = values.out;
  const opened = await openModelOnDevice(values.model);
  const data = await loadLabelledImages(values.images);
  const { split, shots, holdout } = splitOf(values, data);
  const options = trainSettingsFromOptions(values, opened.config, shots);
  const { adapter, checkpointEvery, patience } = options;
  const classPrompts = values.prompts ? await readClassPrompts(values.prompts) : options.training.classPrompts;
  try {
    checkPrompts(data.classNames, options.training.template, classPrompts);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // The passes (the largest that fit the GPU, the micro-batch only when --micro-batch is not given) and
  // the precision, planned before the weights load in it.
  const automatic = values['micro-batch'] === undefined;
  const device = deviceMemoryOf(opened.ctx.device.limits);
  const fitted = await fitTrainSettings(
    opened.config,
    adapter,
    { ...options.training, classPrompts },
    data.classNames.length,
    device,
    {
      keepMicroBatch: !automatic,
      precision: parsePrecision(values.precision),
      f16TimeRatio: f16TimeRatioOf(opened.ctx),
    },
  );
  const model = await loadWeights(opened, fitted.precision);
  const { plan } = fitted;
  log(
    `passes: ${fitted.training.microBatchSize} images${automatic ? ' (chosen to fit)' : ''}, ${fitted.training.textChunk} prompts; planned GPU memory ${mebibytes(plan.peakBytes)} of ${mebibytes(device.budgetBytes)}`,
  );
  split.warnings.forEach((w) => log(`warning: ${w}`));
  const support = subset(data, split.support);
  const heldOut = subset(data, split.heldOut);
  const timeBudget =
    values['time-budget'] === undefined
      ? null
      : await fitTimeBudget(values['time-budget'], model, data.classNames, support, adapter, fitted.training);
  const training = timeBudget ? { ...fitted.training, iterations: timeBudget.iterations } : fitted.training;
  const initial = values.init ? (await readAdapterFor(values.init, model)).tensors : undefined;
  const resumeFrom = values.resume ? await readCheckpoint(values.resume) : undefined;
  const trainable = trainableParameterCount(model.config, adapter);
  log(
    `${adapter.method} r=${adapter.rank} n=${adapter.blocks}: ${trainable} trainable parameters; ${support.images.length} training images, ${heldOut.images.length} held out; ${training.iterations} steps`,
  );

  const steps: StepLog[] = [];
  const evaluations: { step: number; accuracy: number }[] = [];
  const checkpointPath = values.checkpoint;
  const outcome = await runTraining(
    {
      model,
      classNames: data.classNames,
      support,
      heldOut,
      adapter,
      training,
      shots,
      holdout,
      checkpointEvery,
      patience,
      initial,
      resumeFrom,
    },
    {
      step(entry) {
        steps.push(entry);
        log(
          `step ${entry.step}/${training.iterations}  loss ${entry.loss.toFixed(4)}  batch accuracy ${(100 * entry.accuracy).toFixed(0)}%  lr ${entry.lr.toExponential(2)}  ${entry.milliseconds.toFixed(0)} ms`,
        );
      },
      evaluation(step, { accuracy }) {
        evaluations.push({ step, accuracy });
        log(`  held-out accuracy at step ${step}: ${percent(accuracy)}`);
      },
      checkpoint: checkpointPath ? (checkpoint) => writeCheckpoint(checkpointPath, checkpoint) : undefined,
    },
  );
  if (outcome.status !== 'completed') throw new Error('a command-line run is never cancelled');
  const { zeroShot, adapted, supportAccuracy, lastStep, finalCheckpoint } = outcome;
  if (lastStep < training.iterations)
    log(`stopped early at step ${lastStep}: ${patience} evaluations without a better held-out accuracy`);
  if (finalCheckpoint.step < lastStep)
    log(`keeping the adapter of step ${finalCheckpoint.step}, the best held-out accuracy`);
  if (zeroShot && adapted)
    log(
      `held-out accuracy: ${percent(adapted.accuracy)} (zero-shot ${percent(zeroShot.accuracy)}); support set ${percent(supportAccuracy)}`,
    );
  if (checkpointPath) await writeCheckpoint(checkpointPath, finalCheckpoint);

  await writeFileAtomic(out, outcome.adapter.file);
  log(`wrote adapter ${out}`);
  if (values.peft) {
    await mkdir(values.peft, { recursive: true });
    const files = peftExportFiles(outcome.adapter.meta, outcome.adapter.tensors, basename(values.peft));
    for (const [file, content] of Object.entries(files)) await writeFileAtomic(join(values.peft, file), content);
    log(`wrote the PEFT export to ${values.peft}`);
  }
  await emit(
    {
      ...resultHeader(model, out),
      method: adapter.method,
      trainableParameters: trainable,
      settings: {
        ...training,
        adapter,
        precision: fitted.precision.precision,
        shots,
        ...(holdout !== undefined && { holdout }),
      },
      timeBudget,
      steps,
      evaluations,
      zeroShot: zeroShot && summarize(zeroShot, data.classNames),
      final: adapted && summarize(adapted, data.classNames),
      skipped: data.skipped,
    },
    values.log,
  );
}

/** The steps that fit `budget` ("15m") at a step time measured here, with the run's own images and settings. */
async function fitTimeBudget(
  budget: string,
  model: ClipModel,
  classNames: readonly string[],
  support: LabelledImages,
  adapter: AdapterSettings,
  training: TrainSettings,
) {
  let budgetMilliseconds: number;
  try {
    budgetMilliseconds = parseDuration(budget);
  } catch (error) {
    throw new UsageError(`--time-budget: ${(error as Error).message}`);
  }
  log(`timing a few training steps on ${model.ctx.adapterName} for the time budget of ${budget}...`);
  const millisecondsPerStep = await measureStepTime(model, classNames, support, adapter, training);
  const iterations = budgetIterations(budgetMilliseconds, millisecondsPerStep);
  log(`time budget ${budget}: ${millisecondsPerStep.toFixed(0)} ms per step on this device, so ${iterations} steps`);
  return { budget, millisecondsPerStep, iterations };
}

/** The --prompts file: a JSON object of class name to that class's own prompt. */
async function readClassPrompts(path: string): Promise<Record<string, string>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`--prompts: ${path} is not valid JSON (${(error as Error).message})`);
  }
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject || !Object.values(value as object).every((prompt) => typeof prompt === 'string')) {
    throw new UsageError(
      `--prompts: ${path} must be a JSON object of class name to prompt, such as {"golden_retriever": "a photo of a golden retriever, a dog."}`,
    );
  }
  return value as Record<string, string>;
}

async function writeCheckpoint(path: string, checkpoint: TrainerCheckpoint): Promise<void> {
  const bytes = encodeSafetensors(
    [...checkpoint.tensors].map(([name, data]) => ({ name, shape: [data.length], data })),
    {
      format: 'octoclip-checkpoint',
      step: String(checkpoint.step),
      sampler: JSON.stringify(checkpoint.sampler),
      rng: JSON.stringify(checkpoint.rng),
    },
  );
  await writeFileAtomic(path, bytes);
}

async function readCheckpoint(path: string): Promise<TrainerCheckpoint> {
  if (!existsSync(path)) throw new UsageError(`no checkpoint at ${path}`);
  const bytes = new Uint8Array(await readFile(path));
  const header = parseSafetensorsHeader(bytes, bytes.length, path);
  if (header.metadata.format !== 'octoclip-checkpoint') throw new UsageError(`${path} is not an octoclip checkpoint`);
  const tensors = new Map<string, Float32Array>();
  for (const [name, entry] of header.tensors)
    tensors.set(name, decodeTensor(entry, bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength), path));
  return {
    step: Number(header.metadata.step),
    tensors,
    sampler: JSON.parse(header.metadata.sampler),
    rng: JSON.parse(header.metadata.rng),
  };
}
