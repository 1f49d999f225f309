// A studio run in another precision than the loaded weights' (src/worker): planRun resolves the precision
// from the config (auto: f16-storage only when half-precision weights fit larger passes than f32 ones),
// the session loads its weights again in it from the files it kept (progress reported as a load does,
// the loaded session left as it was until replaced), and the time estimate is measured on those weights.

import { describe, expect, it } from 'vitest';
import { preprocessBatch } from '../../src/model/preprocessor';
import { calibrateTraining } from '../../src/worker/calibration';
import { ModelSession } from '../../src/worker/model-session';
import type { AdapterChoice, Precision, TrainChoice } from '../../src/worker/protocol';
import { EngineRefusal } from '../../src/worker/refusal';
import { planRun } from '../../src/worker/training-run';
import { useGpu } from '../helpers/gpu';
import { tinyModelBlobs } from '../helpers/tiny-model';
import { ADAPTER_CHOICE } from '../helpers/choices';

const ctx = await useGpu();
const session = await ModelSession.load(ctx, { id: 'tiny-clip' }, tinyModelBlobs(), () => {});
const classes = 3;
const adapter: AdapterChoice = ADAPTER_CHOICE;
const automatic: TrainChoice = {
  shots: 4,
  seed: 2,
  iterations: 4,
  batchSize: 4,
  microBatchSize: null,
  lr: 1e-2,
  minLr: 1e-6,
  warmupSteps: 0,
  weightDecay: 0.01,
  augment: true,
  evalEvery: 0,
  checkpointEvery: 10,
};
const plan = (choice: Partial<TrainChoice>) => planRun(session.model, adapter, { ...automatic, ...choice }, classes);

describe('the precision of a studio run', () => {
  it('keeps a precision that is set, and auto keeps f32 while f32 weights fit the largest passes', async () => {
    const [f32, half, auto] = [
      await plan({ precision: 'f32' }),
      await plan({ precision: 'f16-storage' }),
      await plan({}),
    ];
    expect(half.precision).toEqual({ precision: 'f16-storage', reason: 'as set' });
    expect(half.plan.breakdown.weights).toBeLessThan(f32.plan.breakdown.weights);
    expect(half.plan.peakBytes).toBeLessThan(f32.plan.peakBytes);
    expect(auto.precision).toEqual({
      precision: 'f32',
      reason: 'auto: f32 weights fit 4 images and 3 prompts per pass, as large as half-precision ones',
    });
    expect(auto.plan).toEqual(f32.plan);

    // A setting this version does not have (from a settings file of another) is refused, not guessed at.
    const refused = await plan({ precision: 'bf16' as Precision }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EngineRefusal);
    expect(refused).toMatchObject({
      kind: 'invalid-settings',
      message: 'The precision must be auto, f32, f16-storage, f16, got "bf16".',
    });
    // f16 arithmetic needs shader-f16: on a device without it the run is refused before anything loads.
    if (!session.model.ctx.hasF16Arithmetic) {
      await expect(plan({ precision: 'f16' })).rejects.toMatchObject({
        kind: 'invalid-settings',
        message: `The f16 precision needs the GPU's shader-f16 feature, which ${session.model.ctx.adapterName} does not offer: use f16-storage or f32.`,
      });
    }
  });

  it('auto holds the weights in half precision when only they fit larger passes in the memory budget', async () => {
    // The budget of passes of 4 images with half-precision weights: f32 weights are over it at 4.
    const budget = (await plan({ precision: 'f16-storage' })).plan.peakBytes;
    const f32 = await plan({ precision: 'f32', memoryBudgetBytes: budget });
    expect(f32.training.microBatchSize).toBeLessThan(4);
    const auto = await plan({ memoryBudgetBytes: budget });
    expect([auto.precision.precision, auto.training.microBatchSize, auto.training.textChunk]).toEqual([
      'f16-storage',
      4,
      3,
    ]);
    expect(auto.precision.reason).toBe(
      `auto: half-precision weights fit 4 images and 3 prompts per pass, f32 weights ${f32.training.microBatchSize} images and 3 prompts per pass`,
    );
  });

  it("loads the weights again in another precision from the session's files, with progress, leaving the session as it was", async () => {
    const progress: [number, number][] = [];
    const half = await session.inPrecision('f16-storage', (loaded, total) => progress.push([loaded, total]));
    try {
      expect(half).not.toBe(session);
      expect([session.precision, half.precision]).toEqual(['f32', 'f16-storage']);
      expect(half.describe()).toMatchObject({
        id: 'tiny-clip',
        precision: 'f16-storage',
        fingerprint: session.describe().fingerprint,
      });
      expect(half.describe().weightBytes).toBeLessThan(session.describe().weightBytes);
      expect(progress.length).toBeGreaterThan(1);
      const [loaded, total] = progress.at(-1)!;
      expect(loaded).toBe(total);
      expect(await session.inPrecision('f32', () => expect.fail('loaded again in the precision it holds'))).toBe(
        session,
      );

      // The same image through both: the half-precision weights round, the arithmetic does not.
      const size = session.model.preprocessor.size;
      const image = {
        rgba: Uint8Array.from({ length: 4 * size * size }, (_, i) => (i * 37) % 256),
        width: size,
        height: size,
      };
      const features = async (model: typeof session.model) => {
        const pixels = preprocessBatch(ctx, [image], model.preprocessor);
        const out = model.imageFeatures(pixels, 1);
        const values = await ctx.read(out);
        pixels.destroy();
        out.destroy();
        return values;
      };
      const [exact, rounded] = [await features(session.model), await features(half.model)];
      const scale = Math.max(...exact.map(Math.abs));
      const worst = Math.max(...exact.map((value, i) => Math.abs(value - rounded[i])));
      expect(worst / scale).toBeGreaterThan(0);
      expect(worst / scale).toBeLessThan(1e-2);
    } finally {
      half.destroy();
    }
  });

  it("times the steps on the weights in the run's precision, loading them again as a run does", async () => {
    const asked: Precision[] = [];
    const loaded: ModelSession[] = [];
    const { millisecondsPerStep } = await calibrateTraining(
      session,
      { adapter, training: { ...automatic, precision: 'f16-storage' }, classes, trainingImages: 6 },
      async (precision) => {
        asked.push(precision);
        const inPrecision = await session.inPrecision(precision, () => {});
        loaded.push(inPrecision);
        return inPrecision;
      },
    );
    expect(asked).toEqual(['f16-storage']);
    expect(loaded[0].precision).toBe('f16-storage');
    expect(millisecondsPerStep).toBeGreaterThan(0);
    loaded.forEach((s) => s.destroy());
  });
});
