// The passes a studio run takes (planRun in src/worker/training-run.ts): automatic ones are the largest
// that fit the GPU memory, a smaller budget gives smaller passes that train to the same adapter as those
// passes set by hand, a micro-batch the user chose is kept, and a run that cannot fit is refused.

import { describe, expect, it } from 'vitest';
import type { RgbaImage } from '../../src/model/preprocessor';
import { deviceMemoryOf } from '../../src/training/memory-plan';
import { runTraining } from '../../src/training/run';
import type { LabelledImages } from '../../src/training/trainer';
import type { AdapterChoice, TrainChoice } from '../../src/worker/protocol';
import { EngineRefusal } from '../../src/worker/refusal';
import { planRun } from '../../src/worker/training-run';
import { useGpu } from '../helpers/gpu';
import { mulberry32 } from '../helpers/random';
import { loadTinyModel } from '../helpers/tiny-model';
import { ADAPTER_CHOICE } from '../helpers/choices';

const ctx = await useGpu();
const { model } = await loadTinyModel(ctx);
const classNames = ['zero', 'one', 'two'];
const adapter: AdapterChoice = ADAPTER_CHOICE;
/** Weights in f32 throughout: auto could hold them in half precision under the smaller budgets below (test/worker/precision.test.ts). */
const automatic: TrainChoice = {
  precision: 'f32',
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

/** Random-pixel images, `perClass` per class. */
function images(perClass: number, seed: number): LabelledImages {
  const random = mulberry32(seed);
  const result: LabelledImages = { images: [], labels: [] };
  for (let i = 0; i < 3 * perClass; i++) {
    const [width, height] = [20 + (i % 4) * 5, 22 + (i % 3) * 6];
    result.images.push({
      rgba: Uint8Array.from({ length: width * height * 4 }, () => Math.floor(256 * random())),
      width,
      height,
    } satisfies RgbaImage);
    result.labels.push(i % 3);
  }
  return result;
}

async function refusal(planning: Promise<unknown>): Promise<EngineRefusal> {
  const error = await planning.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EngineRefusal);
  return error as EngineRefusal;
}

describe('planRun', () => {
  it('takes the whole batch in one pass, and all the prompts in one, when the device has the memory', async () => {
    const { training, plan, budgetBytes } = await planRun(model, adapter, automatic, classNames.length);
    expect([training.microBatchSize, training.textChunk]).toEqual([4, 3]);
    expect(budgetBytes).toBe(deviceMemoryOf(ctx.device.limits).budgetBytes);
    expect(plan.peakBytes).toBeLessThanOrEqual(budgetBytes);
  });

  it('chooses a smaller micro-batch under a smaller budget, which trains to the adapter of that micro-batch set by hand', async () => {
    const byHand = await planRun(model, adapter, { ...automatic, microBatchSize: 2 }, classNames.length);
    const whole = await planRun(model, adapter, automatic, classNames.length);
    expect(byHand.plan.peakBytes).toBeLessThan(whole.plan.peakBytes);

    // A budget of exactly what passes of 2 images need: automatic passes come down to 2.
    const fitted = await planRun(
      model,
      adapter,
      { ...automatic, memoryBudgetBytes: byHand.plan.peakBytes },
      classNames.length,
    );
    expect([fitted.training.microBatchSize, fitted.training.textChunk, fitted.budgetBytes]).toEqual([
      2,
      3,
      byHand.plan.peakBytes,
    ]);
    expect(fitted.training).toEqual(byHand.training);

    const train = async ({ adapter: settings, training }: typeof fitted) => {
      const losses: number[] = [];
      const outcome = await runTraining(
        {
          model,
          classNames,
          support: images(4, 7),
          heldOut: images(1, 8),
          adapter: settings,
          training,
          shots: 4,
          checkpointEvery: 10,
        },
        { step: (log) => losses.push(log.loss) },
      );
      if (outcome.status !== 'completed') throw new Error('the run did not complete');
      return { losses, file: outcome.adapter.file };
    };
    const [automaticRun, handRun] = [await train(fitted), await train(byHand)];
    expect(automaticRun.losses).toHaveLength(automatic.iterations);
    expect(automaticRun.losses.every(Number.isFinite)).toBe(true);
    expect(automaticRun.losses).toEqual(handRun.losses);
    expect(automaticRun.file).toEqual(handRun.file);
  });

  it('keeps the micro-batch the user chose', async () => {
    const { training } = await planRun(model, adapter, { ...automatic, microBatchSize: 1 }, classNames.length);
    expect(training.microBatchSize).toBe(1);
  });

  it('refuses a run that does not fit even one image per pass, saying what to do', async () => {
    const tooSmall = await refusal(
      planRun(model, adapter, { ...automatic, memoryBudgetBytes: 2 ** 19 }, classNames.length),
    );
    expect(tooSmall.kind).toBe('does-not-fit');
    expect(tooSmall.message).toMatch(
      /^The planned GPU memory is over this device's limits even with one image per pass: it needs \d+\.\d MiB at its peak, over the 0\.5 MiB budget\. Use a smaller batch, fewer classes/,
    );

    const smallest = await planRun(model, adapter, { ...automatic, microBatchSize: 1 }, classNames.length);
    const chosen = await refusal(
      planRun(
        model,
        adapter,
        { ...automatic, microBatchSize: 2, memoryBudgetBytes: smallest.plan.peakBytes },
        classNames.length,
      ),
    );
    expect(chosen.kind).toBe('does-not-fit');
    expect(chosen.message).toContain('with 2 images per pass (set the micro-batch to Automatic to try smaller passes)');
  });

  it('refuses settings that cannot work as settings', async () => {
    const badBatch = await refusal(planRun(model, adapter, { ...automatic, microBatchSize: 3 }, classNames.length));
    expect([badBatch.kind, badBatch.message]).toEqual([
      'invalid-settings',
      'The batch size (4) must be a multiple of the micro-batch size (3).',
    ]);
    expect(
      (await refusal(planRun(model, adapter, { ...automatic, memoryBudgetBytes: -1 }, classNames.length))).kind,
    ).toBe('invalid-settings');
  });
});
