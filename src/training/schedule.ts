// The learning-rate schedule: CLIP-LoRA's cosine annealing (torch.optim.lr_scheduler.CosineAnnealingLR with
// T_max = total iterations and eta_min = 1e-6, stepped once per iteration), optionally after a linear warm-up.

export interface LearningRateSchedule {
  /** The peak learning rate (CLIP-LoRA: 2e-4). */
  baseLr: number;
  /** Optimizer steps in the whole run (CLIP-LoRA: 500 x shots). */
  totalSteps: number;
  /** Steps of linear warm-up before the cosine starts; default 0 (CLIP-LoRA has none). */
  warmupSteps?: number;
  /** The floor the cosine anneals to (torch's eta_min); default 1e-6 as in CLIP-LoRA. */
  minLr?: number;
}

export const DEFAULT_MIN_LR = 1e-6;

/**
 * The learning rate for optimizer step `step` (0-based: the first update uses step 0).
 *
 * Without warm-up this is torch's closed form, which its CosineAnnealingLR follows step by step:
 *   lr(t) = minLr + (baseLr - minLr) * (1 + cos(pi * t / totalSteps)) / 2,
 * so step 0 uses baseLr and the rate reaches minLr at t = totalSteps (one past the last step).
 *
 * With W warm-up steps, step t < W uses baseLr * (t + 1) / (W + 1): it rises linearly, never wastes a step
 * at zero, and meets the cosine, which then runs over the remaining totalSteps - W steps from baseLr at
 * step W. Steps at or past totalSteps stay at minLr (torch's cosine would climb again).
 */
export function learningRateAt(step: number, schedule: LearningRateSchedule): number {
  const { baseLr, totalSteps, warmupSteps = 0, minLr = DEFAULT_MIN_LR } = schedule;
  if (!Number.isInteger(step) || step < 0)
    throw new RangeError(`learningRateAt: step must be a non-negative integer, got ${step}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1) {
    throw new RangeError(`learningRateAt: totalSteps must be a positive integer, got ${totalSteps}`);
  }
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps >= totalSteps) {
    throw new RangeError(
      `learningRateAt: warmupSteps must be an integer in [0, totalSteps = ${totalSteps}), got ${warmupSteps}`,
    );
  }
  if (!(Number.isFinite(baseLr) && baseLr > 0))
    throw new RangeError(`learningRateAt: baseLr must be a positive number, got ${baseLr}`);
  if (!(Number.isFinite(minLr) && minLr >= 0 && minLr <= baseLr)) {
    throw new RangeError(`learningRateAt: minLr must be in [0, baseLr = ${baseLr}], got ${minLr}`);
  }

  if (step < warmupSteps) return (baseLr * (step + 1)) / (warmupSteps + 1);
  if (step >= totalSteps) return minLr;
  const progress = (step - warmupSteps) / (totalSteps - warmupSteps);
  return minLr + ((baseLr - minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
}
