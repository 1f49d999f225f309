// The training run: its settings (CLIP-LoRA's recipe unless changed), what the run would cost, and the
// run itself as the engine reports it (phase, loss and accuracy curves, speed). Every checkpoint the
// engine posts is stored, so a run interrupted by a reload or a lost GPU can be resumed.

import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import {
  blocksFor,
  defaultTrainSettings,
  RECIPE_ADAPTER,
  RECIPE_CHECKPOINT_EVERY,
  RECIPE_PATIENCE,
  RECIPE_PRECISION,
  recipeIterations,
} from '../../common/recipe';
import { shotsOf } from '../../common/split';
import { runMilliseconds, type RunShape } from '../../common/run-time';
import type { AdapterRecord, CheckpointRecord, RunHistory } from '../../storage/db';
import { deleteCheckpoint, latestCheckpoint, saveCheckpoint } from '../../storage/checkpoints';
import { getImages } from '../../storage/dataset';
import {
  broadcastRun,
  isTrainingLockHeld,
  listenToRuns,
  whenTrainingLockFree,
  withTrainingLock,
} from '../../storage/run-lock';
import { EngineRequestError } from '../../worker/client';
import type { AdapterChoice, EngineEvent, TrainChoice, TrainPhase, TrainResult } from '../../worker/protocol';
import { RateMeter } from '../rate';
import { trainingProblems, type ElsewhereRun, type PlanState } from '../readiness';
import { splitDataset } from '../split';
import { uniqueName, useAdaptersStore } from './adapters';
import { classPromptsOf, useDatasetStore } from './dataset';
import { errorMessage, useEngineStore } from './engine';
import { estimateKey, useEstimateStore } from './estimate';
import { useEvaluationStore } from './evaluation';
import { useModelStore } from './model';

export type TrainingSettings = AdapterChoice & TrainChoice;

/** Shots per class the form starts with. */
const STARTING_SHOTS = 4;

/** CLIP-LoRA's recipe (src/common/recipe.ts) as the form holds it, at 4 shots. */
export const RECIPE: TrainingSettings = recipeSettings(STARTING_SHOTS);

function recipeSettings(shots: number): TrainingSettings {
  // The engine-side settings the studio does not offer stay the recipe's in the worker; the prompts come with the dataset.
  const { optimizer, beta1, beta2, eps, textChunk, template, classPrompts, ...training } = defaultTrainSettings(shots);
  return {
    ...RECIPE_ADAPTER,
    targets: [...RECIPE_ADAPTER.targets],
    towers: [...RECIPE_ADAPTER.towers],
    ...training,
    microBatchSize: null, // automatic: the worker sizes the passes to the GPU
    memoryBudgetBytes: 0, // automatic: see deviceMemoryOf
    precision: RECIPE_PRECISION,
    shots,
    checkpointEvery: RECIPE_CHECKPOINT_EVERY,
    patience: RECIPE_PATIENCE,
  };
}

/** `interrupted`: stopped by a reload or a lost GPU; the banner offers to resume it from its checkpoint. */
export type RunStatus = 'idle' | 'starting' | 'running' | 'finished' | 'cancelled' | 'failed' | 'interrupted';

/** A run is under way (settings and the dataset are locked, and Start is off) while starting or running. */
export function isRunActive(status: RunStatus): boolean {
  return status === 'starting' || status === 'running';
}

/** A run trains in this tab or in another tab of this browser profile (the dataset's classes stay put). */
export function isTrainingAnywhere(state: { run: { status: RunStatus }; elsewhere: unknown }): boolean {
  return isRunActive(state.run.status) || state.elsewhere !== null;
}

export interface RunState {
  status: RunStatus;
  runId: string | null;
  phase: TrainPhase | null;
  /** Pause or cancel asked for, not yet reached (the engine finishes its step first). */
  pending: 'pause' | 'cancel' | null;
  iterations: number;
  history: RunHistory;
  stepsPerSecond: number | null;
  secondsLeft: number | null;
  /** The step of the last checkpoint stored. */
  savedStep: number | null;
  /** Why the run failed, or why its checkpoint could not be stored. */
  message: string | null;
  /** The adapter a finished run saved. */
  adapter: AdapterRecord | null;
  /** While the weights load again in the run's precision: how far (model-progress). */
  weightsLoaded: { loadedBytes: number; totalBytes: number } | null;
}

/** A run that did not finish, found in storage (after a reload) or left by a lost device. */
export interface InterruptedRun {
  runId: string;
  step: number;
  iterations: number;
  modelId: string;
  savedAt: number;
  /** What stopped it, when this page saw it happen. */
  reason: string | null;
}

export interface TrainingState {
  settings: TrainingSettings;
  plan: PlanState;
  run: RunState;
  interrupted: InterruptedRun | null;
  elsewhere: ElsewhereRun | null;
  update(patch: Partial<TrainingSettings>): void;
  resetSettings(): void;
  /** Asks the engine what the current settings cost (parameters, GPU memory). */
  refreshPlan(): Promise<void>;
  start(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  cancel(): Promise<void>;
  /** Looks in storage for a run that did not finish. */
  findInterrupted(): Promise<void>;
  resumeInterrupted(): Promise<void>;
  discardInterrupted(): Promise<void>;
}

const EMPTY_HISTORY: RunHistory = { steps: [], evaluations: [] };
const IDLE_RUN: RunState = {
  status: 'idle',
  runId: null,
  phase: null,
  pending: null,
  iterations: 0,
  history: EMPTY_HISTORY,
  stepsPerSecond: null,
  secondsLeft: null,
  savedStep: null,
  message: null,
  adapter: null,
  weightsLoaded: null,
};

function describeRun(settings: TrainingSettings, classes: number): string {
  const method =
    settings.method === 'lora' ? `LoRA r${settings.rank}` : `Block-LoRA r${settings.rank} n${settings.blocks}`;
  return `${method} · ${classes} classes · ${settings.shots}-shot`;
}

/** `name`, or `name (2)`, `name (3)`… : the first the library does not hold yet. */
/** The settings as the engine takes them: the adapter's, and the run's. */
export function splitSettings(settings: TrainingSettings): { adapter: AdapterChoice; training: TrainChoice } {
  const { method, rank, blocks, alpha, scalingRule, dropout, targets, towers, ...training } = settings;
  return { adapter: { method, rank, blocks, alpha, scalingRule, dropout, targets, towers }, training };
}

/** The key of the step time a run's steps update (see estimateKey). */
function estimateKeyOf(record: CheckpointRecord): string | null {
  const { connection } = useEngineStore.getState();
  if (connection.phase !== 'ready') return null;
  return estimateKey(
    connection.info.adapterName,
    record.modelFingerprint,
    record.adapter,
    record.training,
    record.classNames.length,
    record.support.imageIds.length,
  );
}

/** What runMilliseconds counts of a run: its length (the engine's, which --time-budget may set) and images. */
function runShape(record: CheckpointRecord, iterations: number): RunShape {
  return {
    iterations,
    evalEvery: record.training.evalEvery,
    checkpointEvery: record.training.checkpointEvery,
    heldOutImages: record.heldOut.imageIds.length,
    trainingImages: record.support.imageIds.length,
  };
}

const NO_ELSEWHERE_PROGRESS: ElsewhereRun = { step: null, iterations: null, stepsPerSecond: null, secondsLeft: null };

function interruptedFrom(record: CheckpointRecord, reason: string | null): InterruptedRun {
  return {
    runId: record.runId,
    step: record.checkpoint?.step ?? 0,
    iterations: record.training.iterations,
    modelId: record.modelId,
    savedAt: record.savedAt,
    reason,
  };
}

/** Where the settings are kept between visits (localStorage: a small preference, not data). */
const SETTINGS_STORAGE_KEY = 'octoclip.training-settings';

export const useTrainingStore = create<TrainingState>()(
  persist(
    (set, get) => {
      const engine = () => useEngineStore.getState();
      /** The stored record of the run in progress; each checkpoint replaces its checkpoint and history. */
      let active: CheckpointRecord | null = null;
      const meter = new RateMeter();
      /** Steps reported since the run (re)started: the first compiles the pipelines and does not count towards the estimate. */
      let stepsSinceStart = 0;
      /** Whether the run in progress was paused (its wall time then says nothing of its parts). */
      let wasPaused = false;

      function updateRun(patch: Partial<RunState>): void {
        set((state) => ({ run: { ...state.run, ...patch } }));
      }

      function onEvent(event: EngineEvent): void {
        const { run } = get();
        if (event.type === 'model-progress' && run.phase === 'loading-weights') {
          const { loadedBytes, totalBytes } = event;
          updateRun({ weightsLoaded: { loadedBytes, totalBytes } });
        }
        if (!('runId' in event) || event.runId !== run.runId) return;
        switch (event.type) {
          case 'train-phase':
            updateRun({
              phase: event.phase,
              pending: event.phase === 'paused' && run.pending === 'pause' ? null : run.pending,
            });
            if (event.phase === 'paused') {
              meter.reset();
              wasPaused = true;
            }
            break;
          case 'train-progress': {
            meter.add(event.log.step);
            const key = active ? estimateKeyOf(active) : null;
            if (key && ++stepsSinceStart > 1) useEstimateStore.getState().recordStep(key, event.log.milliseconds);
            // The steps, evaluations and checkpoints still to come at this device's times; else the step rate.
            const times = key ? useEstimateStore.getState().stepTimes[key] : undefined;
            const history = { ...run.history, steps: [...run.history.steps, event.log] };
            const progress = {
              iterations: event.iterations,
              stepsPerSecond: meter.perSecond(),
              secondsLeft:
                times && active
                  ? runMilliseconds(times, runShape(active, event.iterations), event.log.step) / 1000
                  : meter.secondsUntil(event.iterations),
            };
            updateRun({ history, ...progress });
            broadcastRun({ type: 'progress', step: event.log.step, ...progress });
            break;
          }
          case 'train-evaluation':
            updateRun({
              history: {
                ...run.history,
                evaluations: [...run.history.evaluations, { step: event.step, accuracy: event.accuracy }],
              },
            });
            break;
          case 'train-checkpoint':
            if (active)
              void storeCheckpoint({
                ...active,
                checkpoint: event.checkpoint,
                history: run.history,
                savedAt: Date.now(),
              });
            break;
        }
      }
      engine().listen(onEvent);

      // Another tab's run: its progress while it trains; once its lock is free, what it left behind.
      listenToRuns((message) => {
        if (isRunActive(get().run.status)) return;
        if (message.type === 'progress') set({ elsewhere: { ...message }, interrupted: null });
        else void afterRunElsewhere();
      });

      async function afterRunElsewhere(): Promise<void> {
        await whenTrainingLockFree();
        set({ elsewhere: null });
        // What that run left: an adapter in the library, or a checkpoint to resume.
        await Promise.all([useAdaptersStore.getState().load(), get().findInterrupted()]);
      }

      /**
       * Runs a run (a new one is stored first) while holding the profile's training lock; when another
       * tab trains, shows that instead.
       */
      async function executeAlone(record: CheckpointRecord, isNew: boolean): Promise<void> {
        const ran = await withTrainingLock(async () => {
          if (isNew) {
            try {
              await saveCheckpoint(record);
            } catch (error) {
              set({ run: { ...IDLE_RUN, status: 'failed', message: errorMessage(error) } });
              return;
            }
          }
          await execute(record);
        });
        if (!ran) {
          set((state) => ({ elsewhere: state.elsewhere ?? NO_ELSEWHERE_PROGRESS, interrupted: null }));
          void afterRunElsewhere();
        }
      }

      async function storeCheckpoint(record: CheckpointRecord): Promise<void> {
        active = record;
        try {
          await saveCheckpoint(record);
          updateRun({ savedStep: record.checkpoint?.step ?? 0, message: null });
        } catch (error) {
          updateRun({ message: `Checkpoint not saved: ${errorMessage(error)}` });
        }
      }

      /** Runs a stored run (new, or resumed from its checkpoint) to its end. */
      async function execute(record: CheckpointRecord): Promise<void> {
        active = record;
        meter.reset();
        stepsSinceStart = 0;
        // A whole run from its start without a pause: its wall time teaches the estimate what lies outside
        // the measured parts (reading and decoding the images, planning, saving the adapter).
        const timedFrom = record.checkpoint === null ? performance.now() : null;
        const timesKey = estimateKeyOf(record);
        wasPaused = false;
        set({
          // The form shows what the run trains with (a resumed run keeps its own settings).
          settings: { ...record.adapter, ...record.training },
          interrupted: null,
          run: {
            ...IDLE_RUN,
            status: 'starting',
            runId: record.runId,
            iterations: record.training.iterations,
            history: record.history,
            savedStep: record.checkpoint?.step ?? null,
          },
        });
        let result: TrainResult;
        try {
          const ids = [...record.support.imageIds, ...record.heldOut.imageIds];
          const images = await getImages(ids);
          if (images.some((image) => image === undefined)) {
            throw new Error(
              'Images this run trains on were deleted since it started, so it cannot continue. Discard it and start a new run.',
            );
          }
          const supportCount = record.support.imageIds.length;
          updateRun({ status: 'running' });
          result = await engine().request('trainStart', {
            runId: record.runId,
            classNames: record.classNames,
            support: {
              images: images.slice(0, supportCount).map((i) => i!.blob),
              names: images.slice(0, supportCount).map((i) => i!.name),
              labels: record.support.labels,
            },
            heldOut: {
              images: images.slice(supportCount).map((i) => i!.blob),
              names: images.slice(supportCount).map((i) => i!.name),
              labels: record.heldOut.labels,
            },
            adapter: record.adapter,
            training: record.training,
            resumeFrom: record.checkpoint ?? undefined,
          });
        } catch (error) {
          await stopped(record, error);
          return;
        } finally {
          active = null;
        }
        if (result.status === 'cancelled') {
          await deleteCheckpoint(record.runId);
          updateRun({ status: 'cancelled', phase: null, pending: null });
          return;
        }
        const adapter: AdapterRecord = {
          id: crypto.randomUUID(),
          name: uniqueName(
            describeRun({ ...record.adapter, ...record.training }, record.classNames.length),
            useAdaptersStore.getState().adapters.map((a) => a.name),
          ),
          createdAt: Date.now(),
          source: 'trained',
          meta: result.adapter.meta,
          file: new Blob([new Uint8Array(result.adapter.file)], { type: 'application/octet-stream' }),
        };
        try {
          await useAdaptersStore.getState().add(adapter, record.runId);
        } catch (error) {
          // The checkpoint stays: once there is room, resuming it finishes the run again.
          updateRun({
            status: 'failed',
            phase: null,
            message: `Training finished, but the adapter could not be saved: ${errorMessage(error)}`,
          });
          return;
        }
        updateRun({ status: 'finished', phase: null, pending: null, adapter, secondsLeft: 0 });
        if (timedFrom !== null && timesKey && !wasPaused && !record.training.patience)
          useEstimateStore
            .getState()
            .recordRun(timesKey, runShape(record, record.training.iterations), performance.now() - timedFrom);
        if (result.zeroShot && result.adapted) {
          useEvaluationStore.getState().show({
            adapterId: adapter.id,
            classNames: record.classNames,
            images: record.heldOut,
            allImages: false,
            source: 'training',
            zeroShot: result.zeroShot,
            adapted: result.adapted,
          });
        }
      }

      /** A run that ended with an error: resumable from its checkpoint unless its settings cannot work. */
      async function stopped(record: CheckpointRecord, error: unknown): Promise<void> {
        const kind = error instanceof EngineRequestError ? error.kind : null;
        if (kind === 'invalid-settings' || kind === 'does-not-fit' || kind === 'diverged') {
          await deleteCheckpoint(record.runId);
          // Resuming a diverged run would diverge again at the same learning rate: it ends here.
          const message =
            kind === 'diverged'
              ? 'Training diverged: the loss became NaN or infinite. Lower the learning rate and start a new run.'
              : errorMessage(error);
          updateRun({ status: 'failed', phase: null, pending: null, message });
          return;
        }
        const latest = active ?? record;
        updateRun({ status: 'idle', phase: null, pending: null, runId: null });
        set({ interrupted: interruptedFrom(latest, errorMessage(error)) });
      }

      return {
        settings: RECIPE,
        plan: { status: 'none', reason: 'Load a model to see what training will cost.' },
        run: IDLE_RUN,
        interrupted: null,
        elsewhere: null,

        update(patch) {
          set(({ settings }) => {
            const next = { ...settings, ...patch };
            // Iterations and the micro-batch follow the recipe until the user sets them apart from it.
            if (patch.shots !== undefined && settings.iterations === recipeIterations(settings.shots))
              next.iterations = recipeIterations(patch.shots);
            if (patch.batchSize !== undefined && settings.microBatchSize === settings.batchSize)
              next.microBatchSize = patch.batchSize;
            next.blocks = blocksFor(next.method, next.blocks);
            return { settings: next };
          });
        },

        resetSettings() {
          set({ settings: RECIPE });
        },

        async refreshPlan() {
          const model = useModelStore.getState().loaded;
          const classes = useDatasetStore.getState().classes.length;
          if (!model) {
            set({ plan: { status: 'none', reason: 'Load a model to see what training will cost.' } });
            return;
          }
          const { settings } = get();
          set({ plan: { status: 'planning' } });
          try {
            const { adapter, training } = splitSettings(settings);
            const plan = await engine().request('planTraining', { adapter, training, classes: Math.max(classes, 1) });
            if (get().settings === settings) set({ plan: { status: 'ready', plan } });
          } catch (error) {
            const status =
              error instanceof EngineRequestError && error.kind === 'does-not-fit' ? 'does-not-fit' : 'invalid';
            if (get().settings === settings) set({ plan: { status, message: errorMessage(error) } });
          }
        },

        async start() {
          const { run, settings, plan, elsewhere } = get();
          if (isRunActive(run.status)) return;
          const model = useModelStore.getState().loaded;
          const { classes, images, promptTemplate } = useDatasetStore.getState();
          const split = splitDataset(classes, images, settings, settings.seed);
          // Start is disabled while the checklist shows problems; this guards the same rule.
          if (!model || trainingProblems({ model, classes, images, split, plan, elsewhere }).length) return;
          const { adapter, training: form } = splitSettings(settings);
          // The prompts are the dataset's: its template and its classes' own.
          // A held-out split stands for its training images per class, as the CLI's --holdout does.
          const shots =
            settings.holdout !== undefined ? shotsOf(split.support.imageIds.length, classes.length) : settings.shots;
          const training = { ...form, shots, template: promptTemplate, classPrompts: classPromptsOf(classes) };
          const record: CheckpointRecord = {
            runId: crypto.randomUUID(),
            modelId: model.id,
            modelFingerprint: model.fingerprint,
            classNames: classes.map((c) => c.name),
            support: split.support,
            heldOut: split.heldOut,
            adapter,
            training,
            checkpoint: null,
            history: EMPTY_HISTORY,
            savedAt: Date.now(),
          };
          await executeAlone(record, true);
        },

        async pause() {
          const { run } = get();
          if (run.status !== 'running' || !run.runId || run.pending) return;
          updateRun({ pending: 'pause' });
          await engine().request('trainPause', { runId: run.runId });
        },

        async resume() {
          const { run } = get();
          if (run.status !== 'running' || !run.runId) return;
          updateRun({ pending: null });
          await engine().request('trainResume', { runId: run.runId });
        },

        async cancel() {
          const { run } = get();
          if (run.status !== 'running' || !run.runId) return;
          updateRun({ pending: 'cancel' });
          await engine().request('trainCancel', { runId: run.runId });
        },

        async findInterrupted() {
          const record = await latestCheckpoint();
          if (!record || record.runId === get().run.runId) return;
          // A checkpoint whose run another tab is training is not interrupted.
          if (await isTrainingLockHeld()) {
            set((state) => ({
              elsewhere: state.elsewhere ?? {
                ...NO_ELSEWHERE_PROGRESS,
                step: record.checkpoint?.step ?? 0,
                iterations: record.training.iterations,
              },
            }));
            void afterRunElsewhere();
            return;
          }
          set({ interrupted: interruptedFrom(record, null) });
        },

        async resumeInterrupted() {
          const { interrupted } = get();
          if (!interrupted) return;
          const record = await latestCheckpoint();
          if (!record || record.runId !== interrupted.runId) {
            set({ interrupted: null });
            return;
          }
          if (engine().connection.phase !== 'ready') await engine().connect();
          const model = useModelStore.getState();
          const ready = await model.ensureLoaded(record.modelId);
          const loaded = useModelStore.getState().loaded;
          if (!ready || loaded?.fingerprint !== record.modelFingerprint) {
            set({
              interrupted: {
                ...interrupted,
                reason: `This run trains ${record.modelId}: it must be loaded (and complete in the model cache) to resume.`,
              },
            });
            return;
          }
          await executeAlone(record, false);
        },

        async discardInterrupted() {
          const { interrupted } = get();
          if (!interrupted) return;
          await deleteCheckpoint(interrupted.runId);
          set({ interrupted: null });
        },
      };
    },
    {
      name: SETTINGS_STORAGE_KEY,
      version: 2,
      partialize: (state) => ({ settings: state.settings }),
      // Version 1 had no Automatic micro-batch: one equal to the batch was the default, and is Automatic now.
      migrate: (saved, version) => {
        const settings = (saved as Partial<TrainingState> | undefined)?.settings;
        if (version < 2 && settings && settings.microBatchSize === settings.batchSize)
          return { ...(saved as object), settings: { ...settings, microBatchSize: null } };
        return saved;
      },
      // Settings saved by an older version gain the fields added since.
      merge: (saved, current) => ({
        ...current,
        settings: { ...RECIPE, ...(saved as Partial<TrainingState> | undefined)?.settings },
      }),
    },
  ),
);
