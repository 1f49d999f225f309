// One training run, written once for the studio's worker and the CLI: the zero-shot baseline, the
// Trainer's steps with held-out evaluations and checkpoints at their cadence, pause and cancel between
// steps, early stopping, then the final evaluation and the adapter file. Its callers only carry what it
// reports elsewhere: the worker posts messages, the CLI logs and writes files.

import {
  adapterMetadata,
  encodeAdapterFile,
  type AdapterMetadata,
  type AdapterTensors,
} from '../adapters/adapter-file';
import { AdapterSet } from '../adapters/block-lora';
import type { AdapterSettings } from '../adapters/settings';
import { checkPrompts } from '../common/prompts';
import { Rng, RNG_STREAM } from '../common/random';
import { precisionOf, type TrainSettings } from '../common/recipe';
import type { RunPartTimes } from '../common/run-time';
import type { ClipModel } from '../model/clip';
import {
  evaluate,
  Trainer,
  type Evaluation,
  type LabelledImages,
  type StepLog,
  type TrainerCheckpoint,
} from './trainer';

/** What a run is doing: measuring the zero-shot baseline, training, paused, or evaluating the result. */
export type RunPhase = 'baseline' | 'training' | 'paused' | 'evaluating';

export interface RunSetup {
  model: ClipModel;
  classNames: readonly string[];
  support: LabelledImages;
  heldOut: LabelledImages;
  adapter: AdapterSettings;
  training: TrainSettings;
  /** Recorded in the adapter: evaluation re-derives the held-out split from shots (or holdout) and seed. */
  shots: number;
  /** The held-out fraction of each class, when the split was one ("use my images"; see splitFor). */
  holdout?: number;
  /** Steps between checkpoints (besides the one taken on pause). */
  checkpointEvery: number;
  /**
   * Early stopping: stop once this many periodic held-out evaluations in a row have not beaten the best,
   * and keep the best one's adapter (0 or absent: train every step). Needs held-out images and evalEvery.
   */
  patience?: number;
  /** Adapter tensors to start from instead of the seeded random initialisation. */
  initial?: Map<string, Float32Array>;
  /** A checkpoint of this run (same data and settings) to continue from. */
  resumeFrom?: TrainerCheckpoint;
}

/** What a run reports as it goes. Every hook is optional; a run without `checkpoint` reads no checkpoints back. */
export interface RunHooks {
  phase?(phase: RunPhase): void;
  step?(log: StepLog): void;
  /**
   * Held-out accuracy: the zero-shot baseline at step 0 (not when resuming, whose history has it), every
   * `evalEvery` steps, and the final one. None when nothing is held out.
   */
  evaluation?(step: number, evaluation: Evaluation): void;
  checkpoint?(checkpoint: TrainerCheckpoint): void | Promise<void>;
  /** Runs each piece of GPU work; the worker queues them so that the page's predictions fit between steps. */
  gpuTurn?<T>(work: () => Promise<T>): Promise<T>;
}

export interface TrainedAdapterFile {
  /** The .safetensors adapter file (encodeAdapterFile). */
  file: Uint8Array;
  meta: AdapterMetadata;
  tensors: AdapterTensors;
}

export type RunOutcome =
  | { status: 'cancelled' }
  | {
      status: 'completed';
      adapter: TrainedAdapterFile;
      /** Held-out evaluations without and with the adapter (null when nothing is held out). */
      zeroShot: Evaluation | null;
      adapted: Evaluation | null;
      /** Accuracy on the training images themselves, with the adapter. */
      supportAccuracy: number;
      /** The state its adapter file holds: the last step's, or with early stopping the best evaluation's. */
      finalCheckpoint: TrainerCheckpoint;
      /** The step training ended at (before `iterations` when it stopped early). */
      lastStep: number;
    };

/** Pause, resume and cancel from outside the run; each takes effect between steps. */
export class RunControl {
  private paused = false;
  private cancelled = false;
  /** Set when the run cannot go on (the device was lost while it waited): the run throws it. */
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  /** After the step in progress, the run checkpoints and waits. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.wake?.();
  }

  cancel(): void {
    this.cancelled = true;
    this.wake?.();
  }

  /** Ends the run with `error` at its next turn, even while paused. */
  abandon(error: Error): void {
    this.failure = error;
    this.wake?.();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  /** Throws the failure the run was abandoned with, if any. */
  throwIfAbandoned(): void {
    if (this.failure) throw this.failure;
  }

  /** Resolves when the run is resumed, cancelled or abandoned (at once if it already is). */
  async waitForResume(): Promise<void> {
    if (!this.paused || this.cancelled || this.failure) return;
    await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = null;
  }
}

export async function runTraining(
  setup: RunSetup,
  hooks: RunHooks = {},
  control = new RunControl(),
): Promise<RunOutcome> {
  const { model, classNames, support, heldOut, training } = setup;
  const holdsOut = heldOut.images.length > 0;
  const patience = setup.patience ?? 0;
  if (!Number.isInteger(patience) || patience < 0)
    throw new RangeError(`the patience of early stopping must be a whole number, got ${patience}`);
  if (patience > 0 && !(holdsOut && training.evalEvery > 0))
    throw new RangeError('early stopping needs held-out images and an evaluation interval');
  checkPrompts(classNames, training.template, training.classPrompts);
  const gpuTurn = hooks.gpuTurn ?? (<T>(work: () => Promise<T>) => work());

  let zeroShot: Evaluation | null = null;
  if (holdsOut) {
    hooks.phase?.('baseline');
    zeroShot = await gpuTurn(() =>
      evaluate(model, classNames, heldOut, null, training.template, training.classPrompts),
    );
    // Every B_i starts at zero, so at step 0 the adapted model is the base model.
    if (!setup.resumeFrom) hooks.evaluation?.(0, zeroShot);
  }
  if (control.isCancelled) return { status: 'cancelled' };

  const initRng = Rng.derive(training.seed, RNG_STREAM.adapterInit);
  const adapters = AdapterSet.create(
    model.ctx,
    model.config,
    setup.adapter,
    setup.initial ? { initial: setup.initial } : { random: () => initRng.next() },
  );
  let trainer: Trainer | null = null;
  try {
    trainer = new Trainer(model, adapters, classNames, support, training, setup.resumeFrom);
    const best = new BestEvaluation(patience);
    const { lastLoss, lastEvaluation } = await trainSteps(trainer, setup, hooks, control, gpuTurn, best);
    if (control.isCancelled) return { status: 'cancelled' };

    hooks.phase?.('evaluating');
    const final = trainer;
    const lastStep = final.step;
    let adapted = lastEvaluation?.step === lastStep ? lastEvaluation.evaluation : null;
    if (holdsOut && !adapted) {
      adapted = await gpuTurn(() => final.evaluate(heldOut));
      hooks.evaluation?.(lastStep, adapted);
    }
    // The first evaluation to reach the best accuracy keeps its adapter: a later tie is no improvement.
    const kept = best.kept && adapted && best.kept.evaluation.accuracy >= adapted.accuracy ? best.kept : null;
    if (kept) {
      adapted = kept.evaluation;
      await gpuTurn(async () => final.restore(kept.state));
    }
    const finalCheckpoint = kept ? kept.state : await gpuTurn(() => final.checkpoint());
    const supportAccuracy = (await gpuTurn(() => final.evaluate(support))).accuracy;
    // The precision recorded is the weights' own: what the run computed with.
    const recorded = { ...training, precision: precisionOf(model.weights) };
    const meta = adapterMetadata(
      setup.adapter,
      recorded,
      model,
      classNames,
      { shots: setup.shots, holdout: setup.holdout },
      {
        zeroShotAccuracy: zeroShot?.accuracy ?? null,
        heldOutAccuracy: adapted?.accuracy ?? null,
        supportAccuracy,
        finalLoss: lastLoss,
        heldOutImages: heldOut.images.length,
        trainingImages: support.images.length,
        ...(patience > 0 && { lastStep, keptStep: finalCheckpoint.step }),
      },
    );
    const tensors: AdapterTensors = new Map(
      adapters
        .parameters()
        .map(({ name, tensor }) => [name, { shape: [...tensor.shape], data: finalCheckpoint.tensors.get(name)! }]),
    );
    return {
      status: 'completed',
      adapter: { file: encodeAdapterFile(meta, tensors), meta, tensors },
      zeroShot,
      adapted,
      supportAccuracy,
      finalCheckpoint,
      lastStep,
    };
  } finally {
    trainer?.destroy();
    adapters.destroy();
  }
}

/**
 * Steps timed by measureStepTime after the untimed first one: at least MIN, and more until they add up to
 * TIMED_MILLISECONDS (at most MAX). Two steps of a few milliseconds each are at the mercy of one scheduler
 * hiccup on a busy machine; a second of them is less so, and a full-size model's steps of seconds still
 * take only MIN.
 */
const TIMED_STEPS = { min: 2, max: 12 };
const TIMED_MILLISECONDS = 1000;

/**
 * How long one training step takes on this device: a few of the Trainer's own steps (same kernels, batch
 * and micro-batches) on `support`, the first untimed since it compiles the pipelines. The studio's time
 * estimate and the CLI's --time-budget both measure with it; the adapters are thrown away.
 */
export async function measureStepTime(
  model: ClipModel,
  classNames: readonly string[],
  support: LabelledImages,
  adapter: AdapterSettings,
  training: TrainSettings,
  gpuTurn: NonNullable<RunHooks['gpuTurn']> = (work) => work(),
): Promise<number> {
  return withThrowawayTrainer(model, classNames, support, adapter, training, (trainer) => timedSteps(trainer, gpuTurn));
}

/**
 * The times of a run's parts on this device (runMilliseconds adds them up), on one throwaway trainer: a
 * step as measureStepTime measures it, an evaluation of one image and of `support`'s images (after an
 * untimed one, which compiles the pipelines), and a checkpoint read back.
 */
export async function measureRunPartTimes(
  model: ClipModel,
  classNames: readonly string[],
  support: LabelledImages,
  adapter: AdapterSettings,
  training: TrainSettings,
  gpuTurn: NonNullable<RunHooks['gpuTurn']> = (work) => work(),
): Promise<RunPartTimes> {
  return withThrowawayTrainer(model, classNames, support, adapter, training, async (trainer) => {
    const millisecondsPerStep = await timedSteps(trainer, gpuTurn);
    const one: LabelledImages = { images: support.images.slice(0, 1), labels: support.labels.slice(0, 1) };
    const timed = async (work: () => Promise<unknown>) => {
      const started = performance.now();
      await gpuTurn(work);
      return performance.now() - started;
    };
    await timed(() => trainer.evaluate(one));
    const single = await timed(() => trainer.evaluate(one));
    const all = await timed(() => trainer.evaluate(support));
    const count = support.images.length;
    const millisecondsPerImage = count > 1 ? Math.max(0, (all - single) / (count - 1)) : single / 2;
    const millisecondsPerCheckpoint = await timed(() => trainer.checkpoint());
    return {
      millisecondsPerStep,
      evaluation: { fixedMilliseconds: Math.max(0, single - millisecondsPerImage), millisecondsPerImage },
      millisecondsPerCheckpoint,
    };
  });
}

/** A Trainer with fresh random adapters for the timed steps, destroyed with them after `use`. */
async function withThrowawayTrainer<T>(
  model: ClipModel,
  classNames: readonly string[],
  support: LabelledImages,
  adapter: AdapterSettings,
  training: TrainSettings,
  use: (trainer: Trainer) => Promise<T>,
): Promise<T> {
  const adapters = AdapterSet.create(model.ctx, model.config, adapter, { random: Math.random });
  let trainer: Trainer | null = null;
  try {
    trainer = new Trainer(model, adapters, classNames, support, { ...training, iterations: TIMED_STEPS.max + 1 });
    return await use(trainer);
  } finally {
    trainer?.destroy();
    adapters.destroy();
  }
}

/** The mean time of the TIMED_STEPS after an untimed first one (which compiles the pipelines). */
async function timedSteps(trainer: Trainer, gpuTurn: NonNullable<RunHooks['gpuTurn']>): Promise<number> {
  await gpuTurn(() => trainer.trainStep());
  let milliseconds = 0;
  let steps = 0;
  while (steps < TIMED_STEPS.min || (steps < TIMED_STEPS.max && milliseconds < TIMED_MILLISECONDS)) {
    milliseconds += (await gpuTurn(() => trainer.trainStep())).milliseconds;
    steps++;
  }
  return milliseconds / steps;
}

/** The best held-out evaluation so far and its state, and whether patience has run out since. */
class BestEvaluation {
  kept: { evaluation: Evaluation; state: TrainerCheckpoint } | null = null;
  private stale = 0;

  constructor(readonly patience: number) {}

  /** Records a periodic evaluation; true when the run should stop. */
  async record(evaluation: Evaluation, state: () => Promise<TrainerCheckpoint>): Promise<boolean> {
    if (this.patience === 0) return false;
    if (!this.kept || evaluation.accuracy > this.kept.evaluation.accuracy) {
      this.kept = { evaluation, state: await state() };
      this.stale = 0;
      return false;
    }
    return ++this.stale >= this.patience;
  }
}

/** Steps until done, cancelled or stopped early; returns the last step's loss (null when none ran) and the last evaluation. */
async function trainSteps(
  trainer: Trainer,
  setup: RunSetup,
  hooks: RunHooks,
  control: RunControl,
  gpuTurn: NonNullable<RunHooks['gpuTurn']>,
  best: BestEvaluation,
): Promise<{ lastLoss: number | null; lastEvaluation: { step: number; evaluation: Evaluation } | null }> {
  const { heldOut, training, checkpointEvery } = setup;
  const checkpoint = async () => {
    if (hooks.checkpoint) await hooks.checkpoint(await gpuTurn(() => trainer.checkpoint()));
  };
  let lastLoss: number | null = null;
  let lastEvaluation: { step: number; evaluation: Evaluation } | null = null;
  hooks.phase?.('training');
  while (!trainer.done && !control.isCancelled) {
    control.throwIfAbandoned();
    if (control.isPaused) {
      await checkpoint();
      hooks.phase?.('paused');
      await control.waitForResume();
      if (!control.isCancelled) hooks.phase?.('training');
      continue;
    }
    const log = await gpuTurn(() => trainer.trainStep());
    lastLoss = log.loss;
    hooks.step?.(log);
    // The last step's evaluation and state are the run's result, taken after the loop.
    if (trainer.done) break;
    if (training.evalEvery > 0 && log.step % training.evalEvery === 0 && heldOut.images.length) {
      const evaluation = await gpuTurn(() => trainer.evaluate(heldOut));
      lastEvaluation = { step: log.step, evaluation };
      hooks.evaluation?.(log.step, evaluation);
      if (await best.record(evaluation, () => gpuTurn(() => trainer.checkpoint()))) break;
    }
    if (log.step % checkpointEvery === 0) await checkpoint();
  }
  return { lastLoss, lastEvaluation };
}
