// The one training driver (src/training/run.ts) on the tiny CLIP: it trains exactly as the Trainer stepped
// by hand, reports evaluations and checkpoints at their cadence, pauses with a checkpoint from which a new
// run ends bit-identical, cancels, and writes an adapter file that reads back.

import { describe, expect, it } from 'vitest';
import { decodeAdapterFile } from '../../src/adapters/adapter-file';
import { AdapterSet } from '../../src/adapters/block-lora';
import { defaultAdapterSettings } from '../../src/adapters/settings';
import { Rng, RNG_STREAM } from '../../src/common/random';
import { defaultTrainSettings } from '../../src/common/recipe';
import type { RgbaImage } from '../../src/model/preprocessor';
import { RunControl, runTraining, type RunHooks, type RunPhase, type RunSetup } from '../../src/training/run';
import {
  evaluate,
  Trainer,
  type LabelledImages,
  type StepLog,
  type TrainerCheckpoint,
} from '../../src/training/trainer';
import { useGpu } from '../helpers/gpu';
import { mulberry32 } from '../helpers/random';
import { loadTinyModel } from '../helpers/tiny-model';

const ctx = await useGpu();
const { model } = await loadTinyModel(ctx);
const classNames = ['zero', 'one', 'two'];

/** Random-pixel images of assorted sizes, `perClass` per class. */
function images(perClass: number, seed: number): LabelledImages {
  const random = mulberry32(seed);
  const result: LabelledImages = { images: [], labels: [] };
  for (let i = 0; i < 3 * perClass; i++) {
    const width = 20 + (i % 5) * 7;
    const height = 24 + (i % 3) * 9;
    result.images.push({
      rgba: Uint8Array.from({ length: width * height * 4 }, () => Math.floor(256 * random())),
      width,
      height,
    } satisfies RgbaImage);
    result.labels.push(i % 3);
  }
  return result;
}

const support = images(4, 5);
const heldOut = images(2, 6);
const setup: RunSetup = {
  model,
  classNames,
  support,
  heldOut,
  adapter: defaultAdapterSettings(model.config, { rank: 4, blocks: 2 }),
  training: defaultTrainSettings(4, { seed: 3, iterations: 5, batchSize: 4, lr: 1e-2, evalEvery: 2 }),
  shots: 4,
  checkpointEvery: 2,
};

/** Everything a run reports, in order. */
function recorder() {
  const reports: string[] = [];
  const steps: StepLog[] = [];
  const checkpoints: TrainerCheckpoint[] = [];
  const hooks: RunHooks = {
    phase: (phase: RunPhase) => reports.push(`phase ${phase}`),
    step: (log) => {
      steps.push(log);
      reports.push(`step ${log.step}`);
    },
    evaluation: (step) => reports.push(`evaluation ${step}`),
    checkpoint: (checkpoint) => {
      checkpoints.push(checkpoint);
      reports.push(`checkpoint ${checkpoint.step}`);
    },
  };
  return { reports, steps, checkpoints, hooks };
}

function completed(outcome: Awaited<ReturnType<typeof runTraining>>) {
  if (outcome.status !== 'completed') throw new Error(`the run ended ${outcome.status}`);
  return outcome;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('runTraining', () => {
  it('trains exactly as the Trainer stepped by hand, with evaluations and checkpoints at their cadence', async () => {
    const { reports, steps, hooks } = recorder();
    const outcome = completed(await runTraining(setup, hooks));

    const initRng = Rng.derive(setup.training.seed, RNG_STREAM.adapterInit);
    const adapters = AdapterSet.create(ctx, model.config, setup.adapter, { random: () => initRng.next() });
    const trainer = new Trainer(model, adapters, classNames, support, setup.training);
    const losses: number[] = [];
    while (!trainer.done) losses.push((await trainer.trainStep()).loss);
    const expected = await trainer.checkpoint();
    const adapted = await trainer.evaluate(heldOut);
    trainer.destroy();
    adapters.destroy();

    expect(steps.map((s) => s.loss)).toEqual(losses);
    for (const [name, values] of expected.tensors)
      expect(sameBits(outcome.finalCheckpoint.tensors.get(name)!, values), name).toBe(true);
    expect(outcome.adapted!.predictions).toEqual(adapted.predictions);
    expect(outcome.zeroShot!.predictions).toEqual((await evaluate(model, classNames, heldOut, null)).predictions);
    // Periodic evaluations and checkpoints skip the last step: its evaluation and state are the result.
    expect(reports).toEqual([
      'phase baseline',
      'evaluation 0',
      'phase training',
      'step 1',
      'step 2',
      'evaluation 2',
      'checkpoint 2',
      'step 3',
      'step 4',
      'evaluation 4',
      'checkpoint 4',
      'step 5',
      'phase evaluating',
      'evaluation 5',
    ]);

    const file = decodeAdapterFile(outcome.adapter.file);
    expect(file.meta.metrics).toMatchObject({
      heldOutAccuracy: outcome.adapted!.accuracy,
      zeroShotAccuracy: outcome.zeroShot!.accuracy,
      finalLoss: losses.at(-1),
      trainingImages: 12,
      heldOutImages: 6,
    });
    for (const [name, tensor] of file.tensors)
      expect(sameBits(tensor.data, expected.tensors.get(name)!), name).toBe(true);
  });

  it('pauses with a checkpoint, and a run resumed from it ends bit-identical to an uninterrupted one', async () => {
    const straightRun = recorder();
    const straight = completed(await runTraining(setup, straightRun.hooks));

    const control = new RunControl();
    const first = recorder();
    let cancelled = false;
    const firstOutcome = await runTraining(
      setup,
      {
        ...first.hooks,
        step: (log) => {
          first.hooks.step!(log);
          if (log.step === 3) control.pause();
        },
        phase: (phase) => {
          first.hooks.phase!(phase);
          // Paused after step 3: a new run continues from the checkpoint the pause took; this one ends.
          if (phase === 'paused' && !cancelled) {
            cancelled = true;
            control.cancel();
          }
        },
      },
      control,
    );
    expect(firstOutcome.status).toBe('cancelled');
    expect(first.reports.slice(-3)).toEqual(['step 3', 'checkpoint 3', 'phase paused']);

    const resumed = recorder();
    const outcome = completed(await runTraining({ ...setup, resumeFrom: first.checkpoints.at(-1) }, resumed.hooks));
    expect(resumed.steps.map((s) => s.step)).toEqual([4, 5]);
    expect([...first.steps, ...resumed.steps].map((s) => s.loss)).toEqual(straightRun.steps.map((s) => s.loss));
    // A resumed run's history already has the baseline at step 0.
    expect(resumed.reports).not.toContain('evaluation 0');
    for (const [name, values] of straight.finalCheckpoint.tensors)
      expect(sameBits(outcome.finalCheckpoint.tensors.get(name)!, values), name).toBe(true);
  });

  it('stops early once held-out accuracy has not improved for `patience` evaluations, keeping the best adapter', async () => {
    const patience = 2;
    const early: RunSetup = {
      ...setup,
      training: { ...setup.training, iterations: 12, evalEvery: 1, lr: 5e-2 },
      patience,
    };
    const evaluations: { step: number; accuracy: number }[] = [];
    const outcome = completed(
      await runTraining(early, { evaluation: (step, { accuracy }) => evaluations.push({ step, accuracy }) }),
    );

    // The same rule, applied by hand to what the run reported.
    const periodic = evaluations.filter((e) => e.step > 0);
    let best = periodic[0];
    let stale = 0;
    let stopAt = periodic.at(-1)!.step;
    for (const e of periodic.slice(1)) {
      if (e.accuracy > best.accuracy) [best, stale] = [e, 0];
      else if (++stale === patience) {
        stopAt = e.step;
        break;
      }
    }
    expect(outcome.lastStep).toBe(stopAt);
    expect(outcome.lastStep).toBeLessThan(12);
    expect(periodic.at(-1)!.step).toBe(stopAt);
    expect(outcome.finalCheckpoint.step).toBe(best.step);
    expect(outcome.adapted!.accuracy).toBe(best.accuracy);
    expect(outcome.adapter.meta.metrics).toMatchObject({
      heldOutAccuracy: best.accuracy,
      lastStep: stopAt,
      keptStep: best.step,
    });

    // The kept adapter is the one a Trainer stepped by hand holds at the best step.
    const initRng = Rng.derive(early.training.seed, RNG_STREAM.adapterInit);
    const adapters = AdapterSet.create(ctx, model.config, early.adapter, { random: () => initRng.next() });
    const trainer = new Trainer(model, adapters, classNames, support, early.training);
    while (trainer.step < best.step) await trainer.trainStep();
    const expected = await ctx.readMany(adapters.parameters().map((p) => p.tensor));
    adapters
      .parameters()
      .forEach(({ name }, i) =>
        expect(sameBits(outcome.adapter.tensors.get(name)!.data, expected[i]), name).toBe(true),
      );
    trainer.destroy();
    adapters.destroy();

    await expect(runTraining({ ...setup, training: { ...setup.training, evalEvery: 0 }, patience: 2 })).rejects.toThrow(
      /early stopping needs held-out images and an evaluation interval/,
    );
  });

  it('cancelled before its first step, it trains nothing', async () => {
    const control = new RunControl();
    const { reports, hooks } = recorder();
    control.cancel();
    expect((await runTraining(setup, hooks, control)).status).toBe('cancelled');
    expect(reports).toEqual(['phase baseline', 'evaluation 0']);
  });
});
