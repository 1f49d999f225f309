// The Train screen's time estimate (src/worker/calibration.ts): real training steps of the tiny CLIP
// with the studio's settings, timed, that leave nothing allocated behind and refuse what a run would.

import { describe, expect, it } from 'vitest';
import type { AdapterChoice, TrainChoice } from '../../src/worker/protocol';
import { calibrateTraining } from '../../src/worker/calibration';
import { EngineRefusal } from '../../src/worker/refusal';
import { useGpu } from '../helpers/gpu';
import { loadTinyModel } from '../helpers/tiny-model';

const ctx = await useGpu();
const { model } = await loadTinyModel(ctx);
const adapter: AdapterChoice = {
  method: 'block-lora',
  rank: 2,
  blocks: 2,
  alpha: 1,
  scalingRule: 'alpha/sqrt(r)',
  dropout: 0,
  targets: ['q_proj', 'v_proj'],
  towers: ['text', 'vision'],
};
const training: TrainChoice = {
  shots: 2,
  seed: 1,
  iterations: 1000,
  batchSize: 4,
  microBatchSize: 2,
  lr: 1e-3,
  minLr: 1e-6,
  warmupSteps: 0,
  weightDecay: 0.01,
  augment: true,
  evalEvery: 0,
  checkpointEvery: 10,
};

describe('calibrateTraining', () => {
  it('times training steps with these settings and frees what it allocated', async () => {
    const request = { adapter, training, classes: 3, trainingImages: 6 };
    const first = await calibrateTraining(model, request);
    expect(first.millisecondsPerStep).toBeGreaterThan(0);
    expect(Number.isFinite(first.millisecondsPerStep)).toBe(true);
    // The first steps on a model leave its own caches (kept for every later pass); a calibration keeps nothing.
    const before = ctx.memory.current;
    await calibrateTraining(model, request);
    expect(ctx.memory.current).toBe(before);
  });

  it('refuses settings a run would refuse, with the same sentence', async () => {
    const calibration = calibrateTraining(model, {
      adapter,
      training: { ...training, microBatchSize: 3 },
      classes: 3,
      trainingImages: 6,
    });
    await expect(calibration).rejects.toBeInstanceOf(EngineRefusal);
    await expect(calibration).rejects.toThrow('The batch size (4) must be a multiple of the micro-batch size (3).');
  });
});
