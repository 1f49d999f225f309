// Evaluation: zero-shot against adapted accuracy on the held-out images of an adapter's split, with
// per-class accuracy, the confusion matrix and the images the adapter gets wrong.

import { create } from 'zustand';
import type { AdapterRecord, StoredSplit } from '../../storage/db';
import { getImages } from '../../storage/dataset';
import type { Evaluation } from '../../worker/protocol';
import { splitDataset } from '../split';
import { useDatasetStore } from './dataset';
import { errorMessage, useEngineStore } from './engine';
import { useModelStore } from './model';

export interface EvaluationResult {
  adapterId: string;
  classNames: string[];
  /** The evaluated images, in the order of the evaluations' predictions. */
  images: StoredSplit;
  /** True when the adapter does not say how it split its data: every image was used, training images too. */
  allImages: boolean;
  /** Measured by the training run as it finished, or afterwards from the adapter file. */
  source: 'training' | 'file';
  zeroShot: Evaluation;
  adapted: Evaluation;
}

export interface EvaluationState {
  /** The adapter chosen on the Evaluate screen. */
  adapterId: string | null;
  running: boolean;
  result: EvaluationResult | null;
  problem: string | null;
  choose(adapterId: string | null): void;
  evaluate(adapter: AdapterRecord): Promise<void>;
  /** Shows the evaluation a training run made of its new adapter. */
  show(result: EvaluationResult): void;
}

/** The held-out images of the adapter's split over the dataset, labelled by the adapter's classes. */
function heldOutFor(adapter: AdapterRecord): { images: StoredSplit; allImages: boolean } {
  const { classes, images } = useDatasetStore.getState();
  const adapterClasses = adapter.meta.classNames.map((name) => {
    const found = classes.find((c) => c.name === name);
    if (!found) {
      throw new Error(
        `The dataset has no class “${name}”, which this adapter was trained on: evaluation needs images of ${adapter.meta.classNames.map((n) => `“${n}”`).join(', ')}.`,
      );
    }
    return found;
  });
  const { training } = adapter.meta;
  const shots = Number(training.shots);
  const seed = Number(training.seed);
  // A held-out-fraction run records `holdout` besides its shots: that split wins (splitFor).
  const holdout = typeof training.holdout === 'number' ? training.holdout : undefined;
  if (Number.isInteger(seed) && (holdout !== undefined || (Number.isInteger(shots) && shots >= 1))) {
    return { images: splitDataset(adapterClasses, images, { shots, holdout }, seed).heldOut, allImages: false };
  }
  const labelOf = new Map(adapterClasses.map((c, label) => [c.id, label]));
  const all = images.filter((image) => labelOf.has(image.classId));
  return {
    images: { imageIds: all.map((i) => i.id), labels: all.map((i) => labelOf.get(i.classId)!) },
    allImages: true,
  };
}

export const useEvaluationStore = create<EvaluationState>()((set, get) => ({
  adapterId: null,
  running: false,
  result: null,
  problem: null,

  choose(adapterId) {
    set({ adapterId, problem: null });
  },

  async evaluate(adapter) {
    if (get().running) return;
    set({ adapterId: adapter.id, running: true, problem: null });
    try {
      if (!useModelStore.getState().loaded) throw new Error('Load a model first: the Model screen loads one.');
      const { images, allImages } = heldOutFor(adapter);
      if (images.imageIds.length === 0)
        throw new Error(
          'No held-out images: every image of these classes trains. Add more images per class than the adapter’s shots.',
        );
      const records = await getImages(images.imageIds);
      const blobs = records.map((record) => record!.blob);
      const names = records.map((record) => record!.name);
      const { zeroShot, adapted } = await useEngineStore.getState().request('evaluate', {
        adapter: { id: adapter.id, file: adapter.file },
        images: { images: blobs, names, labels: images.labels },
      });
      set({
        result: {
          adapterId: adapter.id,
          classNames: adapter.meta.classNames,
          images,
          allImages,
          source: 'file',
          zeroShot,
          adapted,
        },
      });
    } catch (error) {
      set({ problem: errorMessage(error) });
    } finally {
      set({ running: false });
    }
  },

  show(result) {
    set({ adapterId: result.adapterId, result, problem: null });
  },
}));
