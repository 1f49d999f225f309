// Which images train and which are held out: CLIP-LoRA's seeded few-shot split (N shots per class), or a
// held-out fraction of each class. The studio's page (to mark held-out images and choose a run's images)
// and the CLI both split with these, so a folder and a seed give the same split in both.

import { Rng, RNG_STREAM } from './random';

export interface FewShotSplit {
  /** Indices into `labels` used for training, ascending. */
  support: number[];
  /** Indices into `labels` kept for evaluation, ascending. */
  heldOut: number[];
  /** One line per class that had too few images for `shots` training images plus one held out. */
  warnings: string[];
}

/**
 * Splits a labelled dataset into `shots` training images per class and the rest held out.
 *
 * Each class's images are shuffled by a generator derived from (`seed`, class label) and the first `shots`
 * train. So a class's split does not depend on the other classes, and for one seed the 4-shot support set
 * of a class is contained in its 8-shot support set.
 *
 * A class with `shots` images or fewer cannot give `shots` and still keep one for evaluation: it gives all
 * but one to training (and holds one out), and a class with a single image trains on it and holds out none.
 * Each such class adds a line to `warnings`.
 *
 * `labels[i]` is image i's class, an integer >= 0; `classNames[label]` (optional) names classes in warnings.
 */
export function fewShotSplit(
  labels: readonly number[],
  shots: number,
  seed: number,
  classNames?: readonly string[],
): FewShotSplit {
  if (!Number.isInteger(shots) || shots < 1)
    throw new RangeError(`fewShotSplit: shots must be a positive integer, got ${shots}`);
  return splitEachClass(labels, seed, classNames, (count, name) => {
    const take = count > shots ? shots : Math.max(1, count - 1);
    const warning =
      take === shots
        ? null
        : count === 1
          ? `${name} has 1 image: it is used for training and none is held out for evaluation`
          : `${name} has ${count} images, fewer than ${shots} shots + 1 held out: ${take} train, 1 is held out`;
    return { take, warning };
  });
}

/**
 * Splits a labelled dataset into a `holdout` fraction of each class held out (rounded, at least one when
 * the class has two images or more) and the rest for training: "use my images". The same per-class
 * shuffle as fewShotSplit, so the held-out images are the end of the order whose start trains.
 */
export function holdoutSplit(
  labels: readonly number[],
  holdout: number,
  seed: number,
  classNames?: readonly string[],
): FewShotSplit {
  if (!(holdout > 0 && holdout < 1))
    throw new RangeError(`the held-out fraction must be between 0 and 1, got ${holdout}`);
  return splitEachClass(labels, seed, classNames, (count, name) => {
    if (count === 1)
      return { take: 1, warning: `${name} has 1 image: it is used for training and none is held out for evaluation` };
    return { take: count - Math.min(count - 1, Math.max(1, Math.round(count * holdout))), warning: null };
  });
}

/** What chooses a split: a held-out fraction of each class when `holdout` is given ("use my images"), else `shots` per class. */
export interface SplitChoice {
  shots: number;
  /** The fraction of each class held out, between 0 and 1 (absent: the shots split). */
  holdout?: number;
}

/** The split a choice and a seed give: holdoutSplit or fewShotSplit. */
export function splitFor(
  labels: readonly number[],
  choice: SplitChoice,
  seed: number,
  classNames?: readonly string[],
): FewShotSplit {
  return choice.holdout !== undefined
    ? holdoutSplit(labels, choice.holdout, seed, classNames)
    : fewShotSplit(labels, choice.shots, seed, classNames);
}

/** The shots a held-out split stands for (the recipe's iterations count them): its training images per class, at least 1. */
export function shotsOf(trainingImages: number, classCount: number): number {
  return Math.max(1, Math.round(trainingImages / Math.max(1, classCount)));
}

/** Shuffles each class's images by (seed, label) and trains on the first `take` that `choose` picks for the class. */
function splitEachClass(
  labels: readonly number[],
  seed: number,
  classNames: readonly string[] | undefined,
  choose: (count: number, name: string) => { take: number; warning: string | null },
): FewShotSplit {
  const byClass = new Map<number, number[]>();
  labels.forEach((label, index) => {
    if (!Number.isInteger(label) || label < 0) {
      throw new RangeError(`labels[${index}] is ${label}, expected a non-negative integer`);
    }
    let members = byClass.get(label);
    if (!members) byClass.set(label, (members = []));
    members.push(index);
  });

  const support: number[] = [];
  const heldOut: number[] = [];
  const warnings: string[] = [];
  for (const label of [...byClass.keys()].sort((x, y) => x - y)) {
    const members = Rng.derive(seed, RNG_STREAM.fewShotSplit, label).shuffle(byClass.get(label) ?? []);
    const name = classNames?.[label] !== undefined ? `class "${classNames[label]}"` : `class ${label}`;
    const { take, warning } = choose(members.length, name);
    support.push(...members.slice(0, take));
    heldOut.push(...members.slice(take));
    if (warning) warnings.push(warning);
  }
  const ascending = (x: number, y: number) => x - y;
  return { support: support.sort(ascending), heldOut: heldOut.sort(ascending), warnings };
}
