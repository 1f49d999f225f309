// `octoclip train` and `octoclip eval`: options and logging around the one training driver
// (src/training/run.ts). Every default, and the help that states it, comes from CLIP-LoRA's recipe.

import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { assertAdapterMatchesBase, decodeAdapterFile } from '../adapters/adapter-file';
import { AdapterSet } from '../adapters/block-lora';
import { toPeft } from '../adapters/peft';
import { allLayers, defaultAdapterSettings, trainableParameterCount, type AdapterSettings } from '../adapters/settings';
import {
  budgetIterations, defaultTrainSettings, ITERATIONS_PER_SHOT, parseDuration, LORA_BLOCKS, RECIPE_ADAPTER, RECIPE_CHECKPOINT_EVERY, RECIPE_PATIENCE, RECIPE_TRAINING,
  TARGET_MATRICES, TOWERS, type AdapterMethod, type ScalingRule, type TargetMatrix, type Tower, type TrainSettings,
} from '../common/recipe';
import { checkPrompts } from '../common/prompts';
import { fewShotSplit, holdoutSplit, shotsOf } from '../common/split';
import type { ClipModel } from '../model/clip';
import type { ClipConfig } from '../model/config';
import { decodeTensor, encodeSafetensors, parseSafetensorsHeader } from '../model/safetensors';
import { measureStepTime, runTraining } from '../training/run';
import { evaluate, type Evaluation, type LabelledImages, type StepLog, type TrainerCheckpoint } from '../training/trainer';
import { loadLabelledImages, type LabelledImageSet } from './images';
import { emit, loadModel, log, required, UsageError } from './io';

/** A number as the help writes it: 2e-4 rather than 0.0002, 0.25 rather than 2.5e-1. */
function shortNumber(value: number): string {
  const plain = String(value);
  const exponent = value.toExponential().replace('e+', 'e');
  return exponent.length < plain.length ? exponent : plain;
}

const R = RECIPE_ADAPTER;
const T = RECIPE_TRAINING;
const otherTargets = TARGET_MATRICES.filter((target) => !R.targets.includes(target));

export const TRAIN_OPTIONS = `octoclip train --model M --images DIR (--shots N | --holdout F) --out ADAPTER [options]

  --shots N trains on N images per class and holds out the rest; --holdout 0.15 holds out 15% of
  each class and trains on the rest (its shots, for the iterations, are the training images per class).
  The defaults are CLIP-LoRA's recipe.
  --method block-lora|lora   adapter kind (default ${R.method})
  --rank R                    rank r (default ${R.rank})
  --blocks N                  Block-LoRA blocks n, dividing r (default ${R.blocks}; lora: ${LORA_BLOCKS})
  --alpha A                   (default ${R.alpha}); --scaling alpha/sqrt(r)|alpha/r (default ${R.scalingRule})
  --targets ${R.targets.join(',')}   adapted matrices (also ${otherTargets.join(', ')})
  --towers ${R.towers.join(',')}        towers carrying adapters (default ${R.towers.join(' and ')}, all layers)
  --dropout P                 adapter input dropout (default ${shortNumber(R.dropout)}); --no-dropout sets 0
  --iterations N              optimizer steps (default ${ITERATIONS_PER_SHOT} x shots)
  --time-budget D             instead of --iterations: as many steps as fit in D (15m, 90s, 1h) at the
                              step time measured on this device before the run, same schedule shape
  --batch-size B              (default ${T.batchSize}); --micro-batch M accumulates B/M passes per step
  --lr LR                     peak learning rate (default ${shortNumber(T.lr)}), cosine to --min-lr (${shortNumber(T.minLr)})
  --warmup N                  linear warm-up steps (default ${T.warmupSteps})
  --weight-decay WD           AdamW weight decay (default ${shortNumber(T.weightDecay)})
  --optimizer adamw|sgd       (default ${T.optimizer})
  --no-augment                no random resized crop / flip (centre crop instead)
  --template T                class prompt template, {} for the class name (default "${T.template}")
  --prompts FILE              JSON {"class name": "prompt"}: those classes' own prompts instead of the template
  --seed S                    seeds the split, batches, augmentation, dropout and init (default ${T.seed})
  --init ADAPTER              start from this adapter's weights instead of the random init
  --eval-every N              held-out evaluation every N steps (default: start and end)
  --early-stop K              stop when K evaluations in a row have not beaten the best held-out
                              accuracy, and keep the best one's adapter (needs --eval-every)
  --checkpoint FILE           save adapter + optimizer + sampler state every --checkpoint-every steps (default ${RECIPE_CHECKPOINT_EVERY})
  --resume FILE               continue a run from its checkpoint (same data and settings)
  --log FILE                  write the JSON log there instead of stdout
  --peft DIR                  also export the Hugging Face PEFT LoRA layout to DIR
`;

export const EVAL_OPTIONS = `octoclip eval --model M --adapter FILE --images DIR [--shots N | --holdout F] [--seed S] [--out FILE]

  With --shots (or --holdout) and --seed, only the images that a training run with the same split held out are used.
  --no-adapter gives the zero-shot baseline on the same images.
`;

const TRAIN_FLAGS = {
  model: { type: 'string' }, images: { type: 'string' }, shots: { type: 'string' }, holdout: { type: 'string' }, out: { type: 'string' },
  method: { type: 'string' }, rank: { type: 'string' }, blocks: { type: 'string' }, alpha: { type: 'string' }, scaling: { type: 'string' },
  targets: { type: 'string' }, towers: { type: 'string' }, dropout: { type: 'string' }, 'no-dropout': { type: 'boolean' },
  iterations: { type: 'string' }, 'batch-size': { type: 'string' }, 'micro-batch': { type: 'string' }, lr: { type: 'string' },
  'min-lr': { type: 'string' }, warmup: { type: 'string' }, 'weight-decay': { type: 'string' }, optimizer: { type: 'string' },
  'no-augment': { type: 'boolean' }, seed: { type: 'string' }, init: { type: 'string' }, 'eval-every': { type: 'string' },
  'early-stop': { type: 'string' }, checkpoint: { type: 'string' }, 'checkpoint-every': { type: 'string' }, resume: { type: 'string' }, log: { type: 'string' },
  peft: { type: 'string' }, template: { type: 'string' }, 'time-budget': { type: 'string' }, prompts: { type: 'string' },
} as const;

type TrainValues = ReturnType<typeof parseArgs<{ options: typeof TRAIN_FLAGS; strict: true }>>['values'];

/** A flag's number, or undefined when the flag is absent (the recipe's default then applies). */
function numberOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new UsageError(`${flag} must be a number, got "${value}"`);
  return parsed;
}

function oneOf<V extends string>(value: string | undefined, flag: string, choices: readonly V[]): V | undefined {
  if (value !== undefined && !choices.includes(value as V)) throw new UsageError(`${flag} must be ${choices.join(' or ')}, got ${value}`);
  return value as V | undefined;
}

/** The run's settings from the command line: the recipe, changed only by the flags given. */
export function trainSettingsFromOptions(values: TrainValues, config: ClipConfig, shots: number) {
  const method = oneOf<AdapterMethod>(values.method, '--method', ['block-lora', 'lora']) ?? R.method;
  const towers = values.towers ? (values.towers.split(',') as Tower[]) : [...R.towers];
  for (const tower of towers) if (!TOWERS.includes(tower)) throw new UsageError(`unknown tower ${tower}; choose from ${TOWERS.join(', ')}`);
  const targets = values.targets
    ? (values.targets.split(',').map((t) => (t.endsWith('_proj') || t.startsWith('fc') ? t : `${t}_proj`)) as TargetMatrix[])
    : undefined;
  for (const t of targets ?? []) if (!TARGET_MATRICES.includes(t)) throw new UsageError(`unknown target ${t}; choose from ${TARGET_MATRICES.join(', ')}`);
  const adapter: AdapterSettings = defaultAdapterSettings(config, {
    method,
    rank: numberOption(values.rank, '--rank'),
    blocks: numberOption(values.blocks, '--blocks'),
    alpha: numberOption(values.alpha, '--alpha'),
    scalingRule: oneOf<ScalingRule>(values.scaling, '--scaling', ['alpha/sqrt(r)', 'alpha/r']),
    dropout: values['no-dropout'] ? 0 : numberOption(values.dropout, '--dropout'),
    targets,
    layers: allLayers(config, towers),
  });
  const training: TrainSettings = defaultTrainSettings(shots, {
    seed: numberOption(values.seed, '--seed'),
    iterations: numberOption(values.iterations, '--iterations'),
    batchSize: numberOption(values['batch-size'], '--batch-size'),
    microBatchSize: numberOption(values['micro-batch'], '--micro-batch'),
    lr: numberOption(values.lr, '--lr'),
    minLr: numberOption(values['min-lr'], '--min-lr'),
    warmupSteps: numberOption(values.warmup, '--warmup'),
    weightDecay: numberOption(values['weight-decay'], '--weight-decay'),
    optimizer: oneOf<TrainSettings['optimizer']>(values.optimizer, '--optimizer', ['adamw', 'sgd']),
    augment: values['no-augment'] ? false : undefined,
    evalEvery: numberOption(values['eval-every'], '--eval-every'),
    template: values.template,
  });
  const checkpointEvery = numberOption(values['checkpoint-every'], '--checkpoint-every') ?? RECIPE_CHECKPOINT_EVERY;
  const patience = numberOption(values['early-stop'], '--early-stop') ?? RECIPE_PATIENCE;
  if (patience > 0 && !training.evalEvery) throw new UsageError('--early-stop needs --eval-every: it counts held-out evaluations');
  if (values['time-budget'] !== undefined && values.iterations !== undefined) throw new UsageError('give one of --iterations and --time-budget');
  return { adapter, training, checkpointEvery, patience };
}

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

/** The split a run's --shots or --holdout and --seed choose (exactly one of the two). */
function splitFromOptions(values: { shots?: string; holdout?: string; seed?: string }, data: LabelledImageSet) {
  if ((values.shots === undefined) === (values.holdout === undefined)) throw new UsageError('give one of --shots N and --holdout F');
  const seed = numberOption(values.seed, '--seed') ?? RECIPE_TRAINING.seed;
  const split = values.holdout !== undefined
    ? holdoutSplit(data.labels, numberOption(values.holdout, '--holdout')!, seed, data.classNames)
    : fewShotSplit(data.labels, numberOption(values.shots, '--shots')!, seed, data.classNames);
  const shots = values.shots !== undefined ? Number(values.shots) : shotsOf(split.support.length, data.classNames.length);
  return { split, shots, holdout: values.holdout !== undefined ? Number(values.holdout) : undefined };
}

export async function trainCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: TRAIN_FLAGS, strict: true });
  if (values.shots === undefined && values.holdout === undefined) throw new UsageError('missing --shots (or --holdout)');
  const out = required(values.out, '--out');
  const model = await loadModel(required(values.model, '--model'));
  const data = await loadLabelledImages(required(values.images, '--images'));
  const { split, shots, holdout } = splitFromOptions(values, data);
  const options = trainSettingsFromOptions(values, model.config, shots);
  const { adapter, checkpointEvery, patience } = options;
  const prompted = { ...options.training, classPrompts: values.prompts ? await readClassPrompts(values.prompts) : options.training.classPrompts };
  try {
    checkPrompts(data.classNames, prompted.template, prompted.classPrompts);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  split.warnings.forEach((w) => log(`warning: ${w}`));
  const support = subset(data, split.support);
  const heldOut = subset(data, split.heldOut);
  const timeBudget = values['time-budget'] === undefined ? null
    : await fitTimeBudget(values['time-budget'], model, data.classNames, support, adapter, prompted);
  const training = timeBudget ? { ...prompted, iterations: timeBudget.iterations } : prompted;
  const initial = values.init ? (await readAdapter(values.init, model)).tensors : undefined;
  const resumeFrom = values.resume ? await readCheckpoint(values.resume) : undefined;
  const trainable = trainableParameterCount(model.config, adapter);
  log(`${adapter.method} r=${adapter.rank} n=${adapter.blocks}: ${trainable} trainable parameters; ${support.images.length} training images, ${heldOut.images.length} held out; ${training.iterations} steps`);

  const steps: StepLog[] = [];
  const evaluations: { step: number; accuracy: number }[] = [];
  const checkpointPath = values.checkpoint;
  const outcome = await runTraining(
    { model, classNames: data.classNames, support, heldOut, adapter, training, shots, holdout, checkpointEvery, patience, initial, resumeFrom },
    {
      step(entry) {
        steps.push(entry);
        log(`step ${entry.step}/${training.iterations}  loss ${entry.loss.toFixed(4)}  batch accuracy ${(100 * entry.accuracy).toFixed(0)}%  lr ${entry.lr.toExponential(2)}  ${entry.milliseconds.toFixed(0)} ms`);
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
  if (lastStep < training.iterations) log(`stopped early at step ${lastStep}: ${patience} evaluations without a better held-out accuracy`);
  if (finalCheckpoint.step < lastStep) log(`keeping the adapter of step ${finalCheckpoint.step}, the best held-out accuracy`);
  if (zeroShot && adapted) log(`held-out accuracy: ${percent(adapted.accuracy)} (zero-shot ${percent(zeroShot.accuracy)}); support set ${percent(supportAccuracy)}`);
  if (checkpointPath) await writeCheckpoint(checkpointPath, finalCheckpoint);

  await writeAtomically(out, outcome.adapter.file);
  log(`wrote adapter ${out}`);
  if (values.peft) {
    await mkdir(values.peft, { recursive: true });
    for (const [file, content] of Object.entries(toPeft(outcome.adapter.meta, outcome.adapter.tensors))) await writeFile(join(values.peft, file), content);
    log(`wrote PEFT LoRA export to ${values.peft}`);
  }
  await emit({
    model: model.id,
    adapter: model.ctx.adapterName,
    method: adapter.method,
    trainableParameters: trainable,
    settings: { ...training, adapter, shots, ...(holdout !== undefined && { holdout }) },
    timeBudget,
    steps,
    evaluations,
    zeroShot: zeroShot && summarize(zeroShot, data.classNames),
    final: adapted && summarize(adapted, data.classNames),
    skipped: data.skipped,
  }, values.log);
}

/** The steps that fit `budget` ("15m") at a step time measured here, with the run's own images and settings. */
async function fitTimeBudget(budget: string, model: ClipModel, classNames: readonly string[], support: LabelledImages, adapter: AdapterSettings, training: TrainSettings) {
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
  if (!existsSync(path)) throw new UsageError(`--prompts: no file at ${path}`);
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`--prompts: ${path} is not valid JSON (${(error as Error).message})`);
  }
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject || !Object.values(value as object).every((prompt) => typeof prompt === 'string')) {
    throw new UsageError(`--prompts: ${path} must be a JSON object of class name to prompt, such as {"golden_retriever": "a photo of a golden retriever, a dog."}`);
  }
  return value as Record<string, string>;
}

/** Never leaves a half-written file under `path`. */
async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(`${path}.tmp`, bytes);
  await rename(`${path}.tmp`, path);
}

async function readAdapter(path: string, model: ClipModel) {
  const { meta, tensors } = decodeAdapterFile(new Uint8Array(await readFile(path)), path);
  assertAdapterMatchesBase(meta, model.id, model.weights.fingerprint);
  return { meta, tensors: new Map([...tensors].map(([name, t]) => [name, t.data])) };
}

async function writeCheckpoint(path: string, checkpoint: TrainerCheckpoint): Promise<void> {
  const bytes = encodeSafetensors(
    [...checkpoint.tensors].map(([name, data]) => ({ name, shape: [data.length], data })),
    { format: 'octoclip-checkpoint', step: String(checkpoint.step), sampler: JSON.stringify(checkpoint.sampler), rng: JSON.stringify(checkpoint.rng) },
  );
  await writeAtomically(path, bytes);
}

async function readCheckpoint(path: string): Promise<TrainerCheckpoint> {
  if (!existsSync(path)) throw new UsageError(`no checkpoint at ${path}`);
  const bytes = new Uint8Array(await readFile(path));
  const header = parseSafetensorsHeader(bytes, bytes.length, path);
  if (header.metadata.format !== 'octoclip-checkpoint') throw new UsageError(`${path} is not an octoclip checkpoint`);
  const tensors = new Map<string, Float32Array>();
  for (const [name, entry] of header.tensors) tensors.set(name, decodeTensor(entry, bytes.subarray(entry.byteOffset, entry.byteOffset + entry.byteLength), path));
  return { step: Number(header.metadata.step), tensors, sampler: JSON.parse(header.metadata.sampler), rng: JSON.parse(header.metadata.rng) };
}

export async function evalCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { model: { type: 'string' }, adapter: { type: 'string' }, images: { type: 'string' }, shots: { type: 'string' }, holdout: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, 'no-adapter': { type: 'boolean' } },
    strict: true,
  });
  const model = await loadModel(required(values.model, '--model'));
  const { meta, tensors } = await readAdapter(required(values.adapter, '--adapter'), model);
  const data = await loadLabelledImages(required(values.images, '--images'));
  const indices = values.shots !== undefined || values.holdout !== undefined ? splitFromOptions(values, data).split.heldOut : data.labels.map((_, i) => i);
  const adapters = values['no-adapter'] ? null : AdapterSet.create(model.ctx, model.config, meta, { initial: tensors });
  const evaluation = await evaluate(model, data.classNames, subset(data, indices), adapters, meta.promptTemplate, meta.classPrompts);
  await emit({ model: model.id, adapter: values['no-adapter'] ? null : values.adapter, device: model.ctx.adapterName, images: indices.length, classes: data.classNames, ...summarize(evaluation, data.classNames), skipped: data.skipped }, values.out);
}
