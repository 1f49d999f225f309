// One training run in the engine: decode the images, measure the zero-shot baseline, step the Trainer
// (one GPU turn per step, so the page can pause, cancel or predict between steps), post progress and
// checkpoints, and finish with the held-out evaluation and the adapter file.

import { adapterMetadata, encodeAdapterFile, type AdapterTensors } from '../adapters/adapter-file';
import { AdapterSet } from '../adapters/block-lora';
import { defaultAdapterSettings, type AdapterSettings } from '../adapters/settings';
import type { ClipConfig } from '../model/config';
import { Rng, RNG_STREAM } from '../training/random';
import { defaultTrainSettings, evaluate, Trainer, type Evaluation, type LabelledImages, type TrainerCheckpoint, type TrainSettings } from '../training/trainer';
import { decodeImages } from './decode';
import { exclusive } from './gpu-queue';
import type { ModelSession } from './model-session';
import type { AdapterChoice, EngineEvent, LabelledBlobs, TrainChoice, TrainPhase, TrainRequest, TrainResult } from './protocol';
import { EngineRefusal } from './refusal';

/** The stream the CLI seeds adapter initialisation from too, so one seed gives one run in both. */

type TrainEvent = Extract<EngineEvent, { runId: string }>;
type Emit = (event: TrainEvent, transfer?: Transferable[]) => void;

/** The adapter settings of a choice: every layer of the chosen towers. Throws EngineRefusal when they cannot work. */
export function adapterSettingsFor(config: ClipConfig, choice: AdapterChoice): AdapterSettings {
  const allLayers = (count: number) => Array.from({ length: count }, (_, i) => i);
  try {
    return defaultAdapterSettings(config, {
      method: choice.method,
      rank: choice.rank,
      blocks: choice.method === 'lora' ? 1 : choice.blocks,
      alpha: choice.alpha,
      scalingRule: choice.scalingRule,
      dropout: choice.dropout,
      targets: choice.targets,
      layers: Object.fromEntries(choice.towers.map((tower) => [tower, allLayers(config[tower].numLayers)])),
    });
  } catch (error) {
    throw asSettingsRefusal(error);
  }
}

/** The engine's RangeErrors about settings ("blocks (n = 3) must divide the rank (r = 2)"), as refusals. */
export function asSettingsRefusal(error: unknown): unknown {
  return error instanceof RangeError ? new EngineRefusal('invalid-settings', `${capitalize(error.message)}.`) : error;
}

export function trainSettingsFor(choice: TrainChoice): TrainSettings {
  const positiveInteger = (value: number, what: string) => {
    if (!Number.isInteger(value) || value < 1) throw new EngineRefusal('invalid-settings', `${capitalize(what)} must be a whole number of at least 1.`);
  };
  positiveInteger(choice.iterations, 'iterations');
  positiveInteger(choice.batchSize, 'the batch size');
  positiveInteger(choice.microBatchSize, 'the micro-batch size');
  positiveInteger(choice.checkpointEvery, 'the checkpoint interval');
  if (choice.batchSize % choice.microBatchSize !== 0) {
    throw new EngineRefusal('invalid-settings', `The batch size (${choice.batchSize}) must be a multiple of the micro-batch size (${choice.microBatchSize}).`);
  }
  if (!(choice.lr > 0)) throw new EngineRefusal('invalid-settings', 'The learning rate must be above 0.');
  return defaultTrainSettings(choice.shots, {
    seed: choice.seed,
    iterations: choice.iterations,
    batchSize: choice.batchSize,
    microBatchSize: choice.microBatchSize,
    lr: choice.lr,
    minLr: Math.min(choice.minLr, choice.lr),
    warmupSteps: choice.warmupSteps,
    weightDecay: choice.weightDecay,
    augment: choice.augment,
    evalEvery: choice.evalEvery,
  });
}

export class TrainingRun {
  private paused = false;
  private cancelled = false;
  /** Set when the run cannot go on (the device was lost while it waited): the run throws it. */
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly session: ModelSession,
    private readonly request: TrainRequest,
    private readonly emit: Emit,
  ) {}

  get runId(): string {
    return this.request.runId;
  }

  /** Takes effect after the step in progress; the run posts a checkpoint, then the "paused" phase. */
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

  /** Ends the run with error at its next turn, even while paused. */
  abandon(error: Error): void {
    this.failure = error;
    this.wake?.();
  }

  async run(): Promise<TrainResult> {
    const { model } = this.session;
    const { request } = this;
    const adapterSettings = adapterSettingsFor(model.config, request.adapter);
    const settings = trainSettingsFor(request.training);
    if (request.support.images.length === 0) throw new EngineRefusal('invalid-settings', 'There are no training images.');

    this.phase('preparing');
    const support = await this.decode(request.support);
    const heldOut = await this.decode(request.heldOut);

    let zeroShot: Evaluation | null = null;
    if (heldOut.images.length) {
      this.phase('baseline');
      zeroShot = await exclusive(() => evaluate(model, request.classNames, heldOut, null, settings.template));
      // Every B_i starts at zero, so at step 0 the adapted model is the base model.
      if (!request.resumeFrom) this.emit({ kind: 'event', type: 'train-evaluation', runId: this.runId, step: 0, accuracy: zeroShot.accuracy });
    }
    if (this.cancelled) return { status: 'cancelled' };

    const initRng = Rng.derive(settings.seed, RNG_STREAM.adapterInit);
    const adapters = AdapterSet.create(model.ctx, model.config, adapterSettings, { random: () => initRng.next() });
    let trainer: Trainer | null = null;
    try {
      trainer = new Trainer(model, adapters, request.classNames, support, settings, request.resumeFrom);
      const lastLoss = await this.train(trainer, heldOut, settings);
      if (this.cancelled) return { status: 'cancelled' };

      this.phase('evaluating');
      const final = trainer;
      const adapted = heldOut.images.length ? await exclusive(() => final.evaluate(heldOut)) : null;
      if (adapted) this.emit({ kind: 'event', type: 'train-evaluation', runId: this.runId, step: final.step, accuracy: adapted.accuracy });
      const supportAccuracy = (await exclusive(() => final.evaluate(support))).accuracy;
      const { tensors } = await exclusive(() => final.checkpoint());
      const meta = adapterMetadata(adapterSettings, settings, this.session.model, this.request.classNames, this.request.training.shots, {
        zeroShotAccuracy: zeroShot?.accuracy ?? null,
        heldOutAccuracy: adapted?.accuracy ?? null,
        supportAccuracy,
        finalLoss: lastLoss,
        heldOutImages: heldOut.images.length,
        trainingImages: support.images.length,
      });
      const adapterTensors: AdapterTensors = new Map(
        adapters.parameters().map(({ name, tensor }) => [name, { shape: [...tensor.shape], data: tensors.get(name)! }]),
      );
      return { status: 'completed', adapter: { file: encodeAdapterFile(meta, adapterTensors), meta }, zeroShot, adapted };
    } finally {
      trainer?.destroy();
      adapters.destroy();
    }
  }

  /** Steps until done or cancelled; returns the last step's loss (null when no step ran). */
  private async train(trainer: Trainer, heldOut: LabelledImages, settings: TrainSettings): Promise<number | null> {
    const { checkpointEvery } = this.request.training;
    let lastLoss: number | null = null;
    this.phase('training');
    while (!trainer.done && !this.cancelled) {
      if (this.failure) throw this.failure;
      if (this.paused) {
        await this.postCheckpoint(trainer);
        this.phase('paused');
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        if (!this.cancelled) this.phase('training');
        continue;
      }
      const log = await exclusive(() => trainer.trainStep());
      lastLoss = log.loss;
      this.emit({ kind: 'event', type: 'train-progress', runId: this.runId, iterations: settings.iterations, log });
      if (trainer.done) break;
      if (settings.evalEvery > 0 && log.step % settings.evalEvery === 0 && heldOut.images.length) {
        const { accuracy } = await exclusive(() => trainer.evaluate(heldOut));
        this.emit({ kind: 'event', type: 'train-evaluation', runId: this.runId, step: log.step, accuracy });
      }
      if (log.step % checkpointEvery === 0) await this.postCheckpoint(trainer);
    }
    return lastLoss;
  }

  private async postCheckpoint(trainer: Trainer): Promise<void> {
    const checkpoint: TrainerCheckpoint = await exclusive(() => trainer.checkpoint());
    const transfer = [...checkpoint.tensors.values()].map((values) => values.buffer);
    this.emit({ kind: 'event', type: 'train-checkpoint', runId: this.runId, checkpoint }, transfer);
  }

  private async decode(blobs: LabelledBlobs): Promise<LabelledImages> {
    return { images: await decodeImages(blobs.images, blobs.names, this.session.model.preprocessor.size), labels: blobs.labels };
  }

  private phase(phase: TrainPhase): void {
    this.emit({ kind: 'event', type: 'train-phase', runId: this.runId, phase });
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
