// A few timed training steps with the studio's settings on synthetic images, so that the page can say
// how long a run will take before it starts. The steps are the Trainer's own (same kernels, batch and
// micro-batches); the first one compiles the pipelines and is not timed.

import { AdapterSet } from '../adapters/block-lora';
import type { ClipModel } from '../model/clip';
import { Trainer } from '../training/trainer';
import { exclusive } from './gpu-queue';
import type { CalibrationRequest, CalibrationResult } from './protocol';
import { planRun } from './training-run';

/** Steps timed after the untimed first one. */
const TIMED_STEPS = 2;

export async function calibrateTraining(model: ClipModel, request: CalibrationRequest): Promise<CalibrationResult> {
  const classNames = Array.from({ length: Math.max(2, request.classes) }, (_, i) => `class ${i}`);
  // The passes a run would take (planRun): timing is of those.
  const planned = await planRun(model, request.adapter, { ...request.training, iterations: TIMED_STEPS + 1 }, classNames.length);
  const { adapter: adapterSettings, training: settings } = planned;
  // A run's batch is at most its training set (an epoch is cut into batches): time that many images.
  const size = model.preprocessor.size;
  const imageCount = Math.max(1, Math.min(settings.batchSize, request.trainingImages));
  const images = Array.from({ length: imageCount }, (_, i) => ({ rgba: new Uint8Array(4 * size * size).fill(40 + ((17 * i) % 200)), width: size, height: size }));
  const adapters = AdapterSet.create(model.ctx, model.config, adapterSettings, { random: Math.random });
  let trainer: Trainer | null = null;
  try {
    trainer = new Trainer(model, adapters, classNames, { images, labels: images.map((_, i) => i % classNames.length) }, settings);
    const stepper = trainer;
    await exclusive(() => stepper.trainStep());
    let milliseconds = 0;
    for (let i = 0; i < TIMED_STEPS; i++) milliseconds += (await exclusive(() => stepper.trainStep())).milliseconds;
    return { millisecondsPerStep: milliseconds / TIMED_STEPS };
  } finally {
    trainer?.destroy();
    adapters.destroy();
  }
}
