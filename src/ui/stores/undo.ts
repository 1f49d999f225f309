// The last deletion, undoable for a few seconds: the deleted records are kept in memory until the offer
// ends, and Undo stores them again. One offer at a time: a new deletion ends the previous offer.

import { create } from 'zustand';
import { errorMessage } from './engine';

/** How long Undo is offered. */
export const UNDO_SECONDS = 10;

export interface UndoOffer {
  /** What was deleted, in words ("Deleted the class “cat” and its 12 images."). */
  message: string;
  /** Puts it back. */
  undo(): Promise<void>;
}

export interface UndoState {
  offer: UndoOffer | null;
  /** Set when putting it back failed. */
  problem: string | null;
  offerUndo(offer: UndoOffer): void;
  undo(): Promise<void>;
  dismiss(): void;
}

export const useUndoStore = create<UndoState>()((set, get) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const end = () => {
    clearTimeout(timer);
    set({ offer: null });
  };
  return {
    offer: null,
    problem: null,

    offerUndo(offer) {
      clearTimeout(timer);
      set({ offer, problem: null });
      timer = setTimeout(() => {
        if (get().offer === offer) set({ offer: null });
      }, UNDO_SECONDS * 1000);
    },

    async undo() {
      const { offer } = get();
      if (!offer) return;
      end();
      try {
        await offer.undo();
      } catch (error) {
        set({ problem: `Could not undo: ${errorMessage(error)}` });
      }
    },

    dismiss() {
      end();
      set({ problem: null });
    },
  };
});
