// Try it: one image (dropped, pasted, picked or taken with the camera) and the class probabilities the
// model gives it with the chosen adapter on and off.

import { create } from 'zustand';
import type { PredictResult } from '../../worker/protocol';
import { useAdaptersStore } from './adapters';
import { useDatasetStore } from './dataset';
import { errorMessage, useEngineStore } from './engine';
import { useModelStore } from './model';

export interface PredictionState {
  image: { blob: Blob; url: string } | null;
  /** The adapter to compare with the base model; null for zero-shot only (the dataset's classes). */
  adapterId: string | null;
  running: boolean;
  result: PredictResult | null;
  problem: string | null;
  /** How many classes the table lists, most probable first; null lists them all. */
  topK: number | null;
  /**
   * Classifies this image. `live` (a camera frame of the live preview) keeps the last result shown
   * until this one's arrives, so the table does not flicker between frames.
   */
  setImage(blob: Blob, options?: { live?: boolean }): Promise<void>;
  chooseAdapter(id: string | null): Promise<void>;
  setTopK(k: number | null): void;
}

/** The classes Try it lists by default, most probable first (Teachable Machine's preview shows all of few). */
export const DEFAULT_TOP_K = 5;

export const usePredictionStore = create<PredictionState>()((set, get) => {
  // Only the answer to the latest question is shown: a newer image or adapter may be chosen meanwhile.
  let latest = 0;

  async function predict(live = false): Promise<void> {
    const { image, adapterId } = get();
    if (!image) return;
    const adapter = adapterId ? (useAdaptersStore.getState().adapters.find((a) => a.id === adapterId) ?? null) : null;
    const classNames = useDatasetStore.getState().classes.map((c) => c.name);
    if (!useModelStore.getState().loaded) {
      set({ result: null, problem: 'Load a model first: the Model screen loads one.' });
      return;
    }
    if (!adapter && classNames.length < 2) {
      set({
        result: null,
        problem:
          'Choose an adapter, or add at least two classes to the dataset: predictions need classes to choose between.',
      });
      return;
    }
    const question = ++latest;
    // A live frame replaces the last result without a "Classifying…" between frames.
    set({ running: !live, problem: null });
    try {
      const result = await useEngineStore.getState().request('predict', {
        image: image.blob,
        classNames,
        adapter: adapter ? { id: adapter.id, file: adapter.file } : null,
      });
      if (question === latest) set({ result, running: false });
    } catch (error) {
      if (question === latest) set({ result: null, problem: errorMessage(error), running: false });
    }
  }

  return {
    image: null,
    adapterId: null,
    running: false,
    result: null,
    problem: null,
    topK: DEFAULT_TOP_K,

    async setImage(blob, { live = false } = {}) {
      const previous = get().image;
      if (previous) URL.revokeObjectURL(previous.url);
      set({ image: { blob, url: URL.createObjectURL(blob) }, ...(live ? {} : { result: null }) });
      await predict(live);
    },

    setTopK(topK) {
      set({ topK });
    },

    async chooseAdapter(id) {
      set({ adapterId: id, result: null });
      await predict();
    },
  };
});
