// The Undo offer (src/ui/stores/undo.ts) on a fake clock: it ends by itself after UNDO_SECONDS, a new
// deletion ends the previous offer, Undo puts back once, and a failed Undo says why. The studio's
// e2e test (e2e/safety.spec.ts) deletes and undoes through the page.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UNDO_SECONDS, useUndoStore } from '../../src/ui/stores/undo';

describe('the Undo offer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    useUndoStore.getState().dismiss();
    vi.useRealTimers();
  });

  it('ends by itself after UNDO_SECONDS, and not before', () => {
    const undo = vi.fn(async () => {});
    useUndoStore.getState().offerUndo({ message: 'Deleted the class “cat”.', undo });
    vi.advanceTimersByTime(UNDO_SECONDS * 1000 - 1);
    expect(useUndoStore.getState().offer?.message).toBe('Deleted the class “cat”.');
    vi.advanceTimersByTime(1);
    expect(useUndoStore.getState().offer).toBeNull();
    expect(undo).not.toHaveBeenCalled();
  });

  it('is replaced by a newer deletion, whose offer lasts its own UNDO_SECONDS', () => {
    useUndoStore.getState().offerUndo({ message: 'first', undo: async () => {} });
    vi.advanceTimersByTime(UNDO_SECONDS * 500);
    useUndoStore.getState().offerUndo({ message: 'second', undo: async () => {} });
    vi.advanceTimersByTime(UNDO_SECONDS * 500 + 1);
    expect(useUndoStore.getState().offer?.message).toBe('second');
    vi.advanceTimersByTime(UNDO_SECONDS * 500);
    expect(useUndoStore.getState().offer).toBeNull();
  });

  it('puts back once, and says why when it cannot', async () => {
    const undo = vi.fn(async () => {});
    useUndoStore.getState().offerUndo({ message: 'm', undo });
    await useUndoStore.getState().undo();
    await useUndoStore.getState().undo();
    expect(undo).toHaveBeenCalledTimes(1);
    useUndoStore.getState().offerUndo({
      message: 'm',
      undo: async () => {
        throw new Error('the storage is full');
      },
    });
    await useUndoStore.getState().undo();
    expect(useUndoStore.getState().problem).toBe('Could not undo: the storage is full');
  });
});
