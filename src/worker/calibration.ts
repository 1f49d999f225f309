// A few timed training steps, evaluations and a checkpoint with the studio's settings on synthetic
// images, so that the page can say how long a run will take before it starts (runMilliseconds). The steps are the Trainer's own (same kernels, batch and
// micro-batches, weights in the run's precision, timed by the training driver's measureStepTime).

import { measureRunPartTimes } from '../training/run';
import { exclusive } from './gpu-queue';
import type { ModelSession } from './model-session';
import type { CalibrationRequest, CalibrationResult } from './protocol';
import { planRun, type SessionIn } from './training-run';

export async function calibrateTraining(
  session: ModelSession,
  request: CalibrationRequest,
  sessionIn: SessionIn,
): Promise<CalibrationResult> {
  const classNames = Array.from({ length: Math.max(2, request.classes) }, (_, i) => `class ${i}`);
  // The passes and precision a run would take (planRun); a step's time does not depend on the run's length.
  const {
    adapter,
    training: settings,
    precision,
  } = await planRun(session.model, request.adapter, { ...request.training, iterations: 1 }, classNames.length);
  const { model } = await sessionIn(precision.precision);
  // A run's batch is at most its training set (an epoch is cut into batches): time that many images.
  const size = model.preprocessor.size;
  const imageCount = Math.max(1, Math.min(settings.batchSize, request.trainingImages));
  const images = Array.from({ length: imageCount }, (_, i) => ({
    rgba: new Uint8Array(4 * size * size).fill(40 + ((17 * i) % 200)),
    width: size,
    height: size,
  }));
  const support = { images, labels: images.map((_, i) => i % classNames.length) };
  return measureRunPartTimes(model, classNames, support, adapter, settings, exclusive);
}
