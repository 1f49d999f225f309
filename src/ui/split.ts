// Which images train and which are held out: CLIP-LoRA's few-shot split (fewShotSplit, seeded per
// class) over the dataset as it is now, with labels in class order.

import { useMemo } from 'react';
import type { ClassRecord, StoredSplit } from '../storage/db';
import { fewShotSplit } from '../common/split';
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

export function splitDataset(classes: readonly ClassRecord[], images: readonly DatasetImage[], shots: number, seed: number): DatasetSplit {
  const labelOf = new Map(classes.map((c, label) => [c.id, label]));
  const labelled = images.filter((image) => labelOf.has(image.classId));
  const labels = labelled.map((image) => labelOf.get(image.classId)!);
  const { support, heldOut, warnings } = labelled.length && Number.isInteger(shots) && shots >= 1
    ? fewShotSplit(labels, shots, seed, classes.map((c) => c.name))
    : { support: [], heldOut: [], warnings: [] };
  const pick = (indices: number[]): StoredSplit => ({ imageIds: indices.map((i) => labelled[i].id), labels: indices.map((i) => labels[i]) });
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

/** The split of the current dataset for these shots and seed, recomputed when any of them changes. */
export function useDatasetSplit(shots: number, seed: number): DatasetSplit {
  const classes = useDatasetStore((s) => s.classes);
  const images = useDatasetStore((s) => s.images);
  return useMemo(() => splitDataset(classes, images, shots, seed), [classes, images, shots, seed]);
}
