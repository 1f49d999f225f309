// The training loop on the tiny CLIP: LoRA and Block-LoRA(n = 1) trajectories are identical, a run
// resumed from a checkpoint ends bit-identical to an uninterrupted one, accumulation matches a full
// batch, divergence stops the run, and 16-shot training on the digits learns.

import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AdapterSet } from '../../src/adapters/block-lora';
import { allLayers, defaultAdapterSettings, type AdapterSettings } from '../../src/adapters/settings';
import type { RgbaImage } from '../../src/model/preprocessor';
import { loadLabelledImages } from '../../src/cli/images';
import { Rng } from '../../src/common/random';
import { fewShotSplit } from '../../src/common/split';
import { DivergenceError } from '../../src/training/step';
import { defaultTrainSettings, type TrainSettings } from '../../src/common/recipe';
import { evaluate, Trainer, type LabelledImages } from '../../src/training/trainer';
import { expectClose } from '../helpers/compare';
import { useGpu } from '../helpers/gpu';
import { mulberry32 } from '../helpers/random';
import { loadTinyModel } from '../helpers/tiny-model';

const ctx = await useGpu();
const { model } = await loadTinyModel(ctx);
const classNames = ['zero', 'one', 'two'];

/** Random-pixel images of assorted sizes, four per class. */
function syntheticImages(): LabelledImages {
  const random = mulberry32(5);
  const images: RgbaImage[] = [];
  const labels: number[] = [];
  for (let i = 0; i < 12; i++) {
    const width = 20 + (i % 5) * 7;
    const height = 24 + (i % 3) * 9;
    images.push({
      rgba: Uint8Array.from({ length: width * height * 4 }, () => Math.floor(256 * random())),
      width,
      height,
    });
    labels.push(i % 3);
  }
  return { images, labels };
}

const data = syntheticImages();

function makeTrainer(
  adapterSettings: AdapterSettings,
  settings: Partial<TrainSettings>,
  resumeFrom?: Awaited<ReturnType<Trainer['checkpoint']>>,
  initSeed = 7,
): Trainer {
  const initRng = Rng.derive(initSeed, 4);
  const adapters = AdapterSet.create(ctx, model.config, adapterSettings, { random: () => initRng.next() });
  return new Trainer(
    model,
    adapters,
    classNames,
    data,
    defaultTrainSettings(4, { seed: 3, iterations: 6, batchSize: 4, microBatchSize: 4, lr: 1e-2, ...settings }),
    resumeFrom,
  );
}

async function run(trainer: Trainer, steps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await trainer.trainStep()).loss);
  return losses;
}

async function parameters(trainer: Trainer): Promise<Float32Array[]> {
  return ctx.readMany(trainer.adapters.parameters().map((p) => p.tensor));
}

function release(trainer: Trainer): void {
  trainer.destroy();
  trainer.adapters.destroy();
}

describe('trainer', () => {
  it('Block-LoRA with one block and LoRA follow identical trajectories', async () => {
    const lora = makeTrainer(defaultAdapterSettings(model.config, { method: 'lora', rank: 2 }), {});
    const block = makeTrainer(defaultAdapterSettings(model.config, { method: 'block-lora', rank: 2, blocks: 1 }), {});
    expect(await run(block, 3)).toEqual(await run(lora, 3));
    const [a, b] = [await parameters(lora), await parameters(block)];
    a.forEach((values, i) => expect(Buffer.from(values.buffer).equals(Buffer.from(b[i].buffer))).toBe(true));
    release(lora);
    release(block);
  });

  it('a run resumed from a checkpoint ends bit-identical to an uninterrupted one (augmentation and dropout on)', async () => {
    const settings = defaultAdapterSettings(model.config, { rank: 4, blocks: 2, dropout: 0.25 });
    const straight = makeTrainer(settings, {});
    const straightLosses = await run(straight, 4);
    const expected = await parameters(straight);
    release(straight);

    const first = makeTrainer(settings, {});
    const firstLosses = await run(first, 2);
    const checkpoint = await first.checkpoint();
    release(first);
    // A fresh adapter set with another random init: everything must come from the checkpoint.
    const resumed = makeTrainer(settings, {}, checkpoint, 8);
    expect(resumed.step).toBe(2);
    const resumedLosses = await run(resumed, 2);
    expect([...firstLosses, ...resumedLosses]).toEqual(straightLosses);
    (await parameters(resumed)).forEach((values, i) =>
      expect(Buffer.from(values.buffer).equals(Buffer.from(expected[i].buffer))).toBe(true),
    );
    release(resumed);
  });

  it('gradient accumulation over micro-batches matches the full batch', async () => {
    const settings = defaultAdapterSettings(model.config, { rank: 2, blocks: 2, dropout: 0 });
    const full = makeTrainer(settings, { batchSize: 4, microBatchSize: 4 });
    const accumulated = makeTrainer(settings, { batchSize: 4, microBatchSize: 2 });
    const [fullLosses, accumulatedLosses] = [await run(full, 2), await run(accumulated, 2)];
    expectClose(accumulatedLosses, fullLosses, { rtol: 1e-5, atol: 1e-6, label: 'losses' });
    const [a, b] = [await parameters(full), await parameters(accumulated)];
    // Summation order differs; AdamW's first steps move each weight by about lr, so 1e-4 of lr is tight.
    a.forEach((values, i) => expectClose(b[i], values, { rtol: 1e-4, atol: 1e-6, label: `parameter ${i}` }));
    release(full);
    release(accumulated);
  });

  it('stops with a clear message when the loss is not finite', async () => {
    const trainer = makeTrainer(defaultAdapterSettings(model.config, { rank: 2, blocks: 1 }), {});
    const a = trainer.adapters.parameters()[0].tensor;
    ctx.upload(a, new Float32Array(a.size).fill(Number.NaN));
    await expect(trainer.trainStep()).rejects.toThrow(DivergenceError);
    await expect(trainer.trainStep()).rejects.toThrow(/training diverged.*Lower the learning rate/);
    release(trainer);
  });
});

const digits = '../shared/data/digits';
describe.skipIf(!existsSync(digits))('learning on real data (../shared/data/digits)', () => {
  if (!existsSync(digits)) console.log(`skipped: ${digits} is absent (a fresh clone has no shared data)`);

  it('16-shot training on three digit classes fits the support set and lifts held-out accuracy far above zero-shot', async () => {
    const dataset = await loadLabelledImages(digits);
    const chosen = LEARNING_CLASSES.map((name) => dataset.classNames.indexOf(name));
    const indices = dataset.labels.flatMap((label, i) => (chosen.includes(label) ? [i] : []));
    const labels = indices.map((i) => chosen.indexOf(dataset.labels[i]));
    const split = fewShotSplit(labels, 16, 1);
    const pick = (positions: number[]): LabelledImages => ({
      images: positions.map((p) => dataset.images[indices[p]]),
      labels: positions.map((p) => labels[p]),
    });
    const support = pick(split.support);
    const heldOut = pick(split.heldOut.filter((_, i) => i % 4 === 0)); // every 4th keeps evaluation quick
    const zeroShot = await evaluate(model, LEARNING_CLASSES, heldOut, null);
    const adapters = AdapterSet.create(ctx, model.config, defaultAdapterSettings(model.config, LEARNING_ADAPTER), {
      random: mulberry32(1),
    });
    const trainer = new Trainer(model, adapters, LEARNING_CLASSES, support, defaultTrainSettings(16, LEARNING_RUN));
    while (!trainer.done) await trainer.trainStep();
    const [fitted, adapted] = [await trainer.evaluate(support), await trainer.evaluate(heldOut)];
    console.log(
      `digits ${LEARNING_CLASSES.join('/')}, 16 shots: zero-shot ${(100 * zeroShot.accuracy).toFixed(1)}%, ` +
        `held-out ${(100 * adapted.accuracy).toFixed(1)}% of ${heldOut.labels.length}, support ${(100 * fitted.accuracy).toFixed(1)}%`,
    );
    expect(fitted.accuracy).toBeGreaterThan(0.9);
    expect(adapted.accuracy).toBeGreaterThan(zeroShot.accuracy + 0.3);
    release(trainer);
  }, 600_000);
});

// The tiny CLIP is random: it learns the digits from its adapters alone, and slowly. Three classes at
// 16 shots, adapters on the vision tower at batch 8, reach support 97.9% and held-out 89.4% in 70
// steps (36 s on SwiftShader); on both towers 120 steps reached 100% and 88.6% in 74 s (the text
// tower's adapters are checked by gradients.test.ts and train in the tests above). Fewer steps fell
// short: 60 of 16 on both towers reached support 83%, 40 of 8 stayed at chance; all ten classes
// reached only 23% in 100 steps (see docs/training.md). Digits are 8x8, so random resized crops at
// scale 0.08 would keep a pixel or two: no augmentation.
const LEARNING_CLASSES = ['zero', 'one', 'seven'];
const LEARNING_ADAPTER: Partial<AdapterSettings> = {
  rank: 8,
  blocks: 2,
  dropout: 0,
  targets: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'],
  layers: allLayers(model.config, ['vision']),
};
const LEARNING_RUN: Partial<TrainSettings> = {
  seed: 1,
  iterations: 70,
  batchSize: 8,
  microBatchSize: 8,
  lr: 1e-2,
  augment: false,
};
