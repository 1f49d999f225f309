// The split of a labelled folder that `train` and `eval` share: --shots N or --holdout F per class, seeded, the
// same as the studio's (src/common/split.ts), so that eval rebuilds exactly the images a training run held out.

import { RECIPE_TRAINING } from '../common/recipe';
import { fewShotSplit, holdoutSplit, shotsOf } from '../common/split';
import type { LabelledImageSet } from './images';
import type { OptionTable } from './options';

export const SPLIT_OPTIONS = {
  shots: { kind: 'integer', value: 'N', min: 1, help: 'train on N images per class, hold out the rest' },
  holdout: {
    kind: 'number',
    value: 'F',
    min: 0.001,
    max: 0.999,
    help: 'hold out the fraction F of each class (e.g. 0.15), train on the rest',
  },
  seed: {
    kind: 'integer',
    value: 'S',
    default: RECIPE_TRAINING.seed,
    help: 'seeds the split (and, in train, batches, augmentation, dropout and init)',
  },
} as const satisfies OptionTable;

interface SplitValues {
  shots?: number;
  holdout?: number;
  seed: number;
}

/** Exactly one of --shots and --holdout, or a problem to report. */
export function checkSplitOptions(values: Omit<SplitValues, 'seed'>): string | null {
  return (values.shots === undefined) === (values.holdout === undefined)
    ? 'give one of --shots N and --holdout F'
    : null;
}

/** The split the options choose, and the shots it amounts to (for --holdout, the training images per class). */
export function splitOf(values: SplitValues, data: LabelledImageSet) {
  const split =
    values.holdout !== undefined
      ? holdoutSplit(data.labels, values.holdout, values.seed, data.classNames)
      : fewShotSplit(data.labels, values.shots!, values.seed, data.classNames);
  const shots = values.shots ?? shotsOf(split.support.length, data.classNames.length);
  return { split, shots, holdout: values.holdout };
}
