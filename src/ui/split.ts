// Which images train and which are held out: CLIP-LoRA's few-shot split or a held-out fraction of each
// class (splitFor, seeded per class, as the CLI's --shots and --holdout) over the dataset as it is now,
// with labels in class order.

import { useMemo } from 'react';
import type { ClassRecord, StoredSplit } from '../storage/db';
import { splitFor, type SplitChoice } from '../common/split';
import { useDatasetStore, type DatasetImage } from './stores/dataset';

export interface DatasetSplit {
  support: StoredSplit;
  heldOut: StoredSplit;
  /** Per class, in class order: images that train, images held out. */
  counts: { classId: string; train: number; heldOut: number }[];
  /** Classes with too few images for the shots (from fewShotSplit). */
  warnings: string[];
  /** Image id to its role. */
  roles: Map<string, 'train' | 'held-out'>;
}

export function splitDataset(
  classes: readonly ClassRecord[],
  images: readonly DatasetImage[],
  choice: SplitChoice,
  seed: number,
): DatasetSplit {
  const labelOf = new Map(classes.map((c, label) => [c.id, label]));
  const labelled = images.filter((image) => labelOf.has(image.classId));
  const labels = labelled.map((image) => labelOf.get(image.classId)!);
  const usable =
    choice.holdout !== undefined
      ? choice.holdout > 0 && choice.holdout < 1
      : Number.isInteger(choice.shots) && choice.shots >= 1;
  const { support, heldOut, warnings } =
    labelled.length && usable
      ? splitFor(
          labels,
          choice,
          seed,
          classes.map((c) => c.name),
        )
      : { support: [], heldOut: [], warnings: [] };
  const pick = (indices: number[]): StoredSplit => ({
    imageIds: indices.map((i) => labelled[i].id),
    labels: indices.map((i) => labels[i]),
  });
  const roles = new Map<string, 'train' | 'held-out'>();
  support.forEach((i) => roles.set(labelled[i].id, 'train'));
  heldOut.forEach((i) => roles.set(labelled[i].id, 'held-out'));
  const counts = classes.map((c, label) => ({
    classId: c.id,
    train: support.filter((i) => labels[i] === label).length,
    heldOut: heldOut.filter((i) => labels[i] === label).length,
  }));
  return { support: pick(support), heldOut: pick(heldOut), counts, warnings, roles };
}

/** The split of the current dataset for this choice and seed, recomputed when any of them changes. */
export function useDatasetSplit({ shots, holdout }: SplitChoice, seed: number): DatasetSplit {
  const classes = useDatasetStore((s) => s.classes);
  const images = useDatasetStore((s) => s.images);
  return useMemo(
    () => splitDataset(classes, images, { shots, holdout }, seed),
    [classes, images, shots, holdout, seed],
  );
}
