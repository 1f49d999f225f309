// The count of what a run does, against runTraining's loop written out step by step.

import { describe, expect, it } from 'vitest';
import { runMilliseconds, runWork, type RunShape } from '../../src/common/run-time';

/** runTraining's schedule, step by step: baseline, periodic evaluations and checkpoints, then the end. */
function countedByLoop(run: RunShape, fromStep: number) {
  const holdsOut = run.heldOutImages > 0;
  let heldOutEvaluations = holdsOut && fromStep === 0 ? 1 : 0;
  let checkpoints = 0;
  for (let step = fromStep + 1; step <= run.iterations; step++) {
    if (step === run.iterations) break;
    if (run.evalEvery > 0 && step % run.evalEvery === 0 && holdsOut) heldOutEvaluations++;
    if (step % run.checkpointEvery === 0) checkpoints++;
  }
  return {
    steps: run.iterations - fromStep,
    heldOutEvaluations: heldOutEvaluations + (holdsOut ? 1 : 0),
    trainingImageEvaluations: 1,
    checkpoints: checkpoints + 1,
  };
}

describe('runWork', () => {
  it("counts the steps, evaluations and checkpoints runTraining's loop makes, from any step", () => {
    for (const iterations of [1, 2, 9, 10, 11, 150])
      for (const evalEvery of [0, 1, 3, 10])
        for (const checkpointEvery of [1, 7, 50])
          for (const heldOutImages of [0, 12])
            for (const fromStep of [0, 1, Math.floor(iterations / 2), iterations - 1]) {
              const run = { iterations, evalEvery, checkpointEvery, heldOutImages, trainingImages: 8 };
              expect(runWork(run, fromStep), JSON.stringify({ run, fromStep })).toEqual(countedByLoop(run, fromStep));
            }
  });
});

describe('runMilliseconds', () => {
  it('adds the parts: 150 steps at batch 8, 32 held-out images evaluated every 10 steps', () => {
    const times = {
      millisecondsPerStep: 220,
      evaluation: { fixedMilliseconds: 100, millisecondsPerImage: 50 },
      millisecondsPerCheckpoint: 30,
    };
    const run = { iterations: 150, evalEvery: 10, checkpointEvery: 50, heldOutImages: 32, trainingImages: 16 };
    // 150 steps, 16 held-out evaluations (baseline, steps 10..140, final), one of the 16 training
    // images, and 3 checkpoints (steps 50, 100 and the final one).
    expect(runMilliseconds(times, run)).toBeCloseTo(150 * 220 + 16 * (100 + 32 * 50) + (100 + 16 * 50) + 3 * 30, 6);
    expect(runMilliseconds(times, run, 150)).toBeCloseTo(100 + 32 * 50 + (100 + 16 * 50) + 30, 6);
  });
});
