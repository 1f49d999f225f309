import { describe, expect, it } from 'vitest';
import { DEFAULT_MIN_LR, learningRateAt } from '../../src/training/schedule';

/**
 * torch.optim.lr_scheduler.CosineAnnealingLR as torch computes it: recursively, one scheduler.step() per
 * iteration (torch/optim/lr_scheduler.py, get_lr). Entry t is the rate the t-th optimizer step uses.
 */
function torchCosineAnnealing(baseLr: number, tMax: number, etaMin: number, steps: number): number[] {
  const rates = [baseLr];
  for (let epoch = 1; epoch < steps; epoch++) {
    const lr = rates[epoch - 1];
    if ((epoch - 1 - tMax) % (2 * tMax) === 0) {
      rates.push(lr + ((baseLr - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2);
    } else {
      rates.push(
        ((1 + Math.cos((Math.PI * epoch) / tMax)) / (1 + Math.cos((Math.PI * (epoch - 1)) / tMax))) * (lr - etaMin) +
          etaMin,
      );
    }
  }
  return rates;
}

describe('learningRateAt', () => {
  // CLIP-LoRA at 4 shots: lr 2e-4, 500 x 4 iterations, eta_min 1e-6.
  const clipLora = { baseLr: 2e-4, totalSteps: 2000 };

  it('follows the closed form at key points', () => {
    expect(learningRateAt(0, clipLora)).toBe(2e-4);
    expect(learningRateAt(1000, clipLora)).toBeCloseTo((2e-4 + 1e-6) / 2, 15);
    expect(learningRateAt(500, clipLora)).toBeCloseTo(1e-6 + ((2e-4 - 1e-6) * (1 + Math.SQRT1_2)) / 2, 15);
    // The last step is one short of the floor; the floor holds from totalSteps on.
    expect(learningRateAt(1999, clipLora)).toBeCloseTo(
      1e-6 + ((2e-4 - 1e-6) * (1 + Math.cos(Math.PI * (1999 / 2000)))) / 2,
      15,
    );
    expect(learningRateAt(2000, clipLora)).toBe(DEFAULT_MIN_LR);
    expect(learningRateAt(5000, clipLora)).toBe(DEFAULT_MIN_LR);
  });

  it("matches torch's recursive CosineAnnealingLR at every step", () => {
    for (const totalSteps of [1, 7, 500, 2000]) {
      const torch = torchCosineAnnealing(2e-4, totalSteps, 1e-6, totalSteps + 1);
      torch.forEach((expected, step) => {
        const actual = learningRateAt(step, { baseLr: 2e-4, totalSteps });
        expect(Math.abs(actual - expected), `step ${step} of ${totalSteps}`).toBeLessThan(1e-12 * 2e-4);
      });
    }
  });

  it('decreases monotonically', () => {
    let previous = Infinity;
    for (let step = 0; step <= 100; step++) {
      const lr = learningRateAt(step, { baseLr: 1e-3, totalSteps: 100, minLr: 0 });
      expect(lr).toBeLessThanOrEqual(previous);
      previous = lr;
    }
    expect(previous).toBe(0);
  });

  it('warms up linearly, then runs the cosine over the remaining steps', () => {
    const schedule = { baseLr: 1e-3, totalSteps: 110, warmupSteps: 10, minLr: 1e-5 };
    expect(learningRateAt(0, schedule)).toBeCloseTo(1e-3 / 11, 18);
    expect(learningRateAt(9, schedule)).toBeCloseTo((1e-3 * 10) / 11, 18);
    expect(learningRateAt(10, schedule)).toBe(1e-3);
    expect(learningRateAt(60, schedule)).toBeCloseTo((1e-3 + 1e-5) / 2, 18);
    expect(learningRateAt(110, schedule)).toBe(1e-5);
    for (let step = 1; step <= 10; step++)
      expect(learningRateAt(step, schedule)).toBeGreaterThan(learningRateAt(step - 1, schedule));
  });

  it('refuses settings that make no schedule', () => {
    expect(() => learningRateAt(-1, clipLora)).toThrow(RangeError);
    expect(() => learningRateAt(0.5, clipLora)).toThrow(RangeError);
    expect(() => learningRateAt(0, { baseLr: 2e-4, totalSteps: 0 })).toThrow(/totalSteps/);
    expect(() => learningRateAt(0, { baseLr: 2e-4, totalSteps: 10, warmupSteps: 10 })).toThrow(/warmupSteps/);
    expect(() => learningRateAt(0, { baseLr: 0, totalSteps: 10 })).toThrow(/baseLr/);
    expect(() => learningRateAt(0, { baseLr: 1e-7, totalSteps: 10 })).toThrow(/minLr/);
  });
});
