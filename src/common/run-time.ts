// How long a training run takes, from the times of its parts measured on this device: every step, the
// held-out evaluations (the zero-shot baseline, one every evalEvery steps, the final one), the
// evaluation on the training images, and the checkpoints. One count of what a run does (mirroring
// runTraining in src/training/run.ts), for the estimate before a run and the time left during it.

/** Measured on this device with a run's settings (the worker's calibration; steps also by runs). */
export interface RunPartTimes {
  millisecondsPerStep: number;
  /** An evaluation of n images takes fixed + n x perImage (the text pass, then the images). */
  evaluation: { fixedMilliseconds: number; millisecondsPerImage: number };
  /** Reading the adapter and optimizer state back for a checkpoint. */
  millisecondsPerCheckpoint: number;
  /**
   * What a whole run takes besides those parts (reading and decoding its images, planning, saving the
   * adapter), as the last run with these settings measured it; absent before one.
   */
  millisecondsPerRun?: number;
}

export interface RunShape {
  iterations: number;
  /** 0: no periodic evaluation. */
  evalEvery: number;
  checkpointEvery: number;
  heldOutImages: number;
  trainingImages: number;
}

/** What a run does from `fromStep` (steps done; 0 before it starts) to its end. */
export function runWork(run: RunShape, fromStep = 0) {
  const { iterations, evalEvery, checkpointEvery, heldOutImages } = run;
  // Periodic evaluations and checkpoints fall on the steps before the last (whose own come after the loop).
  const onStepsBefore = (every: number) =>
    every > 0 ? Math.floor((iterations - 1) / every) - Math.floor(Math.max(0, fromStep) / every) : 0;
  const holdsOut = heldOutImages > 0;
  return {
    steps: Math.max(0, iterations - fromStep),
    heldOutEvaluations: holdsOut ? (fromStep === 0 ? 1 : 0) + Math.max(0, onStepsBefore(evalEvery)) + 1 : 0,
    trainingImageEvaluations: 1,
    checkpoints: Math.max(0, onStepsBefore(checkpointEvery)) + 1,
  };
}

/** The milliseconds a run takes from `fromStep` to its end. */
export function runMilliseconds(times: RunPartTimes, run: RunShape, fromStep = 0): number {
  const work = runWork(run, fromStep);
  const evaluation = (images: number) =>
    times.evaluation.fixedMilliseconds + images * times.evaluation.millisecondsPerImage;
  return (
    (fromStep === 0 ? (times.millisecondsPerRun ?? 0) : 0) +
    work.steps * times.millisecondsPerStep +
    work.heldOutEvaluations * evaluation(run.heldOutImages) +
    work.trainingImageEvaluations * evaluation(run.trainingImages) +
    work.checkpoints * times.millisecondsPerCheckpoint
  );
}
