// A training run in the engine worker: the studio's choices as settings (refused with a sentence when
// they cannot work), the weights in the run's precision, the images decoded, then the one training
// driver (src/training/run.ts), its reports posted to the page as train-* events.

import { allLayers, defaultAdapterSettings, type AdapterSettings } from '../adapters/settings';
import {
  blocksFor,
  defaultTrainSettings,
  parsePrecision,
  missingFeature,
  RECIPE_PRECISION,
  type Precision,
  type ResolvedPrecision,
  type TrainSettings,
} from '../common/recipe';
import type { ClipModel } from '../model/clip';
import type { ClipConfig } from '../model/config';
import {
  deviceMemoryOf,
  fitTrainSettings,
  mebibytes,
  TrainingDoesNotFitError,
  type MemoryPlan,
} from '../training/memory-plan';
import { RunControl, runTraining } from '../training/run';
import type { LabelledImages } from '../training/trainer';
import { decodeImages } from './decode';
import { exclusive } from './gpu-queue';
import type { ModelSession } from './model-session';
import type {
  AdapterChoice,
  EngineEvent,
  LabelledBlobs,
  TrainChoice,
  TrainPhase,
  TrainRequest,
  TrainResult,
} from './protocol';
import { f16TimeRatioOf } from '../kernels/matmul-tune';
import { EngineRefusal } from './refusal';

type TrainEvent = Extract<EngineEvent, { runId: string }>;
type Emit = (event: TrainEvent, transfer?: Transferable[]) => void;

/** The adapter settings of a choice: every layer of the chosen towers. Throws EngineRefusal when they cannot work. */
export function adapterSettingsFor(config: ClipConfig, choice: AdapterChoice): AdapterSettings {
  try {
    return defaultAdapterSettings(config, {
      method: choice.method,
      rank: choice.rank,
      blocks: blocksFor(choice.method, choice.blocks),
      alpha: choice.alpha,
      scalingRule: choice.scalingRule,
      dropout: choice.dropout,
      targets: choice.targets,
      layers: allLayers(config, choice.towers),
    });
  } catch (error) {
    throw asSettingsRefusal(error);
  }
}

/** The engine's RangeErrors about settings ("blocks (n = 3) must divide the rank (r = 2)"), as refusals. */
export function asSettingsRefusal(error: unknown): unknown {
  return error instanceof RangeError ? new EngineRefusal('invalid-settings', `${capitalize(error.message)}.`) : error;
}

/** The engine settings of a choice: the recipe's, changed by the form. Throws EngineRefusal when they cannot work. */
export function trainSettingsFor(choice: TrainChoice): TrainSettings {
  if (!Number.isInteger(choice.checkpointEvery) || choice.checkpointEvery < 1) {
    throw new EngineRefusal('invalid-settings', 'The checkpoint interval must be a whole number of at least 1.');
  }
  if (choice.patience && !choice.evalEvery) {
    throw new EngineRefusal(
      'invalid-settings',
      'Early stopping counts held-out evaluations: set how often they happen (Held-out evaluation every).',
    );
  }
  try {
    return defaultTrainSettings(choice.shots, {
      seed: choice.seed,
      iterations: choice.iterations,
      batchSize: choice.batchSize,
      microBatchSize: choice.microBatchSize ?? undefined, // automatic: one pass, unless planRun finds it does not fit
      lr: choice.lr,
      minLr: Math.min(choice.minLr, choice.lr),
      warmupSteps: choice.warmupSteps,
      weightDecay: choice.weightDecay,
      augment: choice.augment,
      evalEvery: choice.evalEvery,
      template: choice.template,
      classPrompts: choice.classPrompts,
    });
  } catch (error) {
    throw asSettingsRefusal(error);
  }
}

/** A choice as the run it makes on a model and its device. */
export interface PlannedRun {
  adapter: AdapterSettings;
  /** The choice's settings, with the passes planRun chose. */
  training: TrainSettings;
  plan: MemoryPlan;
  /** The GPU memory the passes were sized for. */
  budgetBytes: number;
  /** The precision the weights must be held in for it. */
  precision: ResolvedPrecision;
}

/**
 * The run a choice makes on this model's device: its settings with the largest passes that fit the GPU
 * memory (the micro-batch unless the user chose one, and the text chunk), so that a run does not fail
 * for memory when smaller passes would fit, and its precision (fitTrainSettings; planned from the
 * config, whatever precision the model is loaded in). The worker plans, times and trains with this one rule.
 * Throws EngineRefusal: 'invalid-settings', or 'does-not-fit' with what to do when nothing fits.
 */
export async function planRun(
  model: ClipModel,
  adapterChoice: AdapterChoice,
  choice: TrainChoice,
  classes: number,
): Promise<PlannedRun> {
  const adapter = adapterSettingsFor(model.config, adapterChoice);
  const wanted = trainSettingsFor(choice);
  try {
    const device = deviceMemoryOf(model.ctx.device.limits, choice.memoryBudgetBytes);
    const { training, plan, precision } = await fitTrainSettings(model.config, adapter, wanted, classes, device, {
      keepMicroBatch: choice.microBatchSize !== null,
      precision: parsePrecision(choice.precision ?? RECIPE_PRECISION), // a stored setting from another version is refused
      f16TimeRatio: f16TimeRatioOf(model.ctx),
    });
    const needed = missingFeature(precision.precision, model.ctx.device.features);
    if (needed) {
      throw new EngineRefusal(
        'invalid-settings',
        `The ${precision.precision} precision needs the GPU's ${needed} feature, which ${model.ctx.adapterName} does not offer: use f16-storage or f32.`,
      );
    }
    return { adapter, training, plan, budgetBytes: device.budgetBytes, precision };
  } catch (error) {
    if (error instanceof TrainingDoesNotFitError) {
      const passes =
        choice.microBatchSize === null
          ? 'even with one image per pass'
          : `with ${choice.microBatchSize} images per pass (set the micro-batch to Automatic to try smaller passes)`;
      const { shortfall } = error;
      const why =
        'limit' in shortfall
          ? shortfall.limit
          : `it needs ${mebibytes(shortfall.peakBytes)} at its peak, over the ${mebibytes(shortfall.budgetBytes)} budget`;
      throw new EngineRefusal(
        'does-not-fit',
        `The planned GPU memory is over this device's limits ${passes}: ${why}. Use a smaller batch, fewer classes, adapters on fewer matrices or on one encoder, or a larger GPU memory setting if the GPU has more.`,
      );
    }
    throw asSettingsRefusal(error);
  }
}

/** The loaded model with its weights in a precision: the session itself, or one loaded again in it (ModelSession.inPrecision). */
export type SessionIn = (precision: Precision) => Promise<ModelSession>;

export class TrainingRun {
  private readonly control = new RunControl();

  constructor(
    private session: ModelSession,
    private readonly request: TrainRequest,
    private readonly emit: Emit,
    private readonly sessionIn: SessionIn,
  ) {}

  get runId(): string {
    return this.request.runId;
  }

  /** Takes effect after the step in progress; the run posts a checkpoint, then the "paused" phase. */
  pause(): void {
    this.control.pause();
  }

  resume(): void {
    this.control.resume();
  }

  cancel(): void {
    this.control.cancel();
  }

  /** Ends the run with error at its next turn, even while paused. */
  abandon(error: Error): void {
    this.control.abandon(error);
  }

  async run(): Promise<TrainResult> {
    const { request, runId } = this;
    const planned = await planRun(this.session.model, request.adapter, request.training, request.classNames.length);
    const { adapter, training } = planned;
    if (request.support.images.length === 0)
      throw new EngineRefusal('invalid-settings', 'There are no training images.');
    if (request.training.patience && request.heldOut.images.length === 0) {
      throw new EngineRefusal(
        'invalid-settings',
        'Early stopping needs held-out images: add images or lower the shots.',
      );
    }

    if (planned.precision.precision !== this.session.precision) {
      this.phase('loading-weights');
      this.session = await this.sessionIn(planned.precision.precision);
    }
    const { model } = this.session;
    this.phase('preparing');
    const support = await this.decode(request.support);
    const heldOut = await this.decode(request.heldOut);
    const outcome = await runTraining(
      {
        model,
        classNames: request.classNames,
        support,
        heldOut,
        adapter,
        training,
        shots: request.training.shots,
        holdout: request.training.holdout,
        checkpointEvery: request.training.checkpointEvery,
        patience: request.training.patience,
        resumeFrom: request.resumeFrom,
      },
      {
        phase: (phase) => this.phase(phase),
        step: (log) =>
          this.emit({ kind: 'event', type: 'train-progress', runId, iterations: training.iterations, log }),
        evaluation: (step, { accuracy }) =>
          this.emit({ kind: 'event', type: 'train-evaluation', runId, step, accuracy }),
        checkpoint: (checkpoint) => {
          const transfer = [...checkpoint.tensors.values()].map((values) => values.buffer);
          this.emit({ kind: 'event', type: 'train-checkpoint', runId, checkpoint }, transfer);
        },
        gpuTurn: exclusive,
      },
      this.control,
    );
    if (outcome.status === 'cancelled') return outcome;
    const { file, meta } = outcome.adapter;
    return { status: 'completed', adapter: { file, meta }, zeroShot: outcome.zeroShot, adapted: outcome.adapted };
  }

  private async decode(blobs: LabelledBlobs): Promise<LabelledImages> {
    return {
      images: await decodeImages(blobs.images, blobs.names, this.session.model.preprocessor.size),
      labels: blobs.labels,
    };
  }

  private phase(phase: TrainPhase): void {
    this.emit({ kind: 'event', type: 'train-phase', runId: this.runId, phase });
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
