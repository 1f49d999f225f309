// How long a training run's parts take on this device with these settings (a step, an evaluation, a
// checkpoint): measured by a calibration before the first run, the step time then kept up to date by
// the runs themselves. Kept per device, model and
// settings in localStorage, so the estimate is there at once the next time.

import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import { RECIPE_PRECISION } from '../../common/recipe';
import { runMilliseconds, type RunPartTimes, type RunShape } from '../../common/run-time';
import type { AdapterChoice, CalibrationRequest, TrainChoice } from '../../worker/protocol';
import { errorMessage, useEngineStore } from './engine';

/** The times of a run's parts (runMilliseconds adds them up); the step's follows the runs. */
export interface StepTime extends RunPartTimes {
  /** Calibration before any run, or a step time the runs with these settings have updated. */
  source: 'calibration' | 'run';
}

export interface EstimateState {
  /** By estimateKey. */
  stepTimes: Record<string, StepTime>;
  /** The key being calibrated now. */
  measuring: string | null;
  /** Why calibrating a key failed (it is not tried again for that key). */
  problem: { key: string; message: string } | null;
  calibrate(key: string, request: CalibrationRequest): Promise<void>;
  /** A step of a run took this long: the estimate follows the run. */
  recordStep(key: string, milliseconds: number): void;
  /** A whole run took this long: the part outside steps, evaluations and checkpoints is kept. */
  recordRun(key: string, run: RunShape, milliseconds: number): void;
}

/** How much one run step moves the kept step time (an exponential average over about 10 steps). */
const RUN_STEP_WEIGHT = 0.1;
/** Step times kept for this many device/model/settings combinations, the newest. */
const KEPT_STEP_TIMES = 24;

/**
 * What a step's time depends on: the device, the model, the adapter, the batch and micro-batch (with
 * the memory budget that sizes an automatic one), the precision, the images per batch (a batch is at
 * most the training set) and the classes (the text pass).
 */
export function estimateKey(
  deviceName: string,
  modelFingerprint: string,
  adapter: AdapterChoice,
  training: TrainChoice,
  classes: number,
  trainingImages: number,
): string {
  const { method, rank, blocks, targets, towers, dropout } = adapter;
  const imagesPerBatch = Math.min(training.batchSize, trainingImages);
  return JSON.stringify([
    deviceName,
    modelFingerprint,
    method,
    rank,
    blocks,
    [...targets].sort(),
    [...towers].sort(),
    dropout > 0,
    imagesPerBatch,
    training.microBatchSize,
    training.memoryBudgetBytes ?? 0,
    training.precision ?? RECIPE_PRECISION,
    training.augment,
    classes,
  ]);
}

export const useEstimateStore = create<EstimateState>()(
  persist(
    (set, get) => {
      function keep(key: string, time: StepTime): void {
        const others = Object.entries(get().stepTimes)
          .filter(([k]) => k !== key)
          .slice(-(KEPT_STEP_TIMES - 1));
        set({ stepTimes: Object.fromEntries([...others, [key, time]]) });
      }

      return {
        stepTimes: {},
        measuring: null,
        problem: null,

        async calibrate(key, request) {
          const { measuring, stepTimes, problem } = get();
          if (measuring || stepTimes[key] || problem?.key === key) return;
          set({ measuring: key, problem: null });
          try {
            const times = await useEngineStore.getState().request('calibrateTraining', request);
            keep(key, { ...times, source: 'calibration' });
            set({ measuring: null });
          } catch (error) {
            set({
              measuring: null,
              problem: { key, message: `The time could not be measured: ${errorMessage(error)}` },
            });
          }
        },

        recordStep(key, milliseconds) {
          // Only a calibration measures the evaluations and checkpoints: without one there is nothing to update.
          const kept = get().stepTimes[key];
          if (!kept) return;
          const millisecondsPerStep =
            kept.source === 'run'
              ? (1 - RUN_STEP_WEIGHT) * kept.millisecondsPerStep + RUN_STEP_WEIGHT * milliseconds
              : milliseconds;
          keep(key, { ...kept, millisecondsPerStep, source: 'run' });
        },

        recordRun(key, run, milliseconds) {
          const kept = get().stepTimes[key];
          if (!kept) return;
          const parts = runMilliseconds({ ...kept, millisecondsPerRun: 0 }, run);
          keep(key, { ...kept, millisecondsPerRun: Math.max(0, milliseconds - parts) });
        },
      };
    },
    {
      name: 'octoclip.step-times',
      // Version 1 kept only the step time: those entries are measured again, with the other parts.
      version: 2,
      migrate: () => ({ stepTimes: {} }),
      partialize: (state) => ({ stepTimes: state.stepTimes }),
    },
  ),
);
