// The Train screen's time estimate (src/worker/calibration.ts): real training steps of the tiny CLIP
// with the studio's settings, timed, that leave nothing allocated behind and refuse what a run would,
// on the weights in the run's precision (loaded again in it when the session holds them otherwise).

import { describe, expect, it } from 'vitest';
import type { AdapterChoice, TrainChoice } from '../../src/worker/protocol';
import { calibrateTraining } from '../../src/worker/calibration';
import { ModelSession } from '../../src/worker/model-session';
import { EngineRefusal } from '../../src/worker/refusal';
import { useGpu } from '../helpers/gpu';
import { tinyModelBlobs } from '../helpers/tiny-model';
import { ADAPTER_CHOICE } from '../helpers/choices';

const ctx = await useGpu();
const session = await ModelSession.load(ctx, { id: 'tiny-clip' }, tinyModelBlobs(), () => {});
/** The session's weights already are f32: a run in f32 loads nothing again. */
const asLoaded = async () => session;
const adapter: AdapterChoice = { ...ADAPTER_CHOICE, dropout: 0 };
const training: TrainChoice = {
  precision: 'f32',
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
    const first = await calibrateTraining(session, request, asLoaded);
    expect(first.millisecondsPerStep).toBeGreaterThan(0);
    expect(Number.isFinite(first.millisecondsPerStep)).toBe(true);
    // The first steps on a model leave its own caches (kept for every later pass); a calibration keeps nothing.
    const before = ctx.memory.current;
    await calibrateTraining(session, request, asLoaded);
    expect(ctx.memory.current).toBe(before);
  });

  it('refuses settings a run would refuse, with the same sentence', async () => {
    const calibration = calibrateTraining(
      session,
      { adapter, training: { ...training, microBatchSize: 3 }, classes: 3, trainingImages: 6 },
      asLoaded,
    );
    await expect(calibration).rejects.toBeInstanceOf(EngineRefusal);
    await expect(calibration).rejects.toThrow('The batch size (4) must be a multiple of the micro-batch size (3).');
  });
});
