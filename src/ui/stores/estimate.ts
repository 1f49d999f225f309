// How long a training step takes on this device with these settings: measured by a few calibration
// steps before the first run, then kept up to date by the runs themselves. Kept per device, model and
// settings in localStorage, so the estimate is there at once the next time.

import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import { RECIPE_PRECISION } from '../../common/recipe';
import type { AdapterChoice, CalibrationRequest, TrainChoice } from '../../worker/protocol';
import { errorMessage, useEngineStore } from './engine';

export interface StepTime {
  millisecondsPerStep: number;
  /** Calibration steps before any run, or the steps of a run with these settings. */
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
            const { millisecondsPerStep } = await useEngineStore.getState().request('calibrateTraining', request);
            keep(key, { millisecondsPerStep, source: 'calibration' });
            set({ measuring: null });
          } catch (error) {
            set({
              measuring: null,
              problem: { key, message: `The time could not be measured: ${errorMessage(error)}` },
            });
          }
        },

        recordStep(key, milliseconds) {
          const kept = get().stepTimes[key];
          const millisecondsPerStep =
            kept?.source === 'run'
              ? (1 - RUN_STEP_WEIGHT) * kept.millisecondsPerStep + RUN_STEP_WEIGHT * milliseconds
              : milliseconds;
          keep(key, { millisecondsPerStep, source: 'run' });
        },
      };
    },
    { name: 'octoclip.step-times', version: 1, partialize: (state) => ({ stepTimes: state.stepTimes }) },
  ),
);
