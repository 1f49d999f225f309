// The bar at the bottom of the studio that offers to undo the last deletion (see stores/undo).

import { useEffect } from 'react';
import { UNDO_SECONDS, useUndoStore } from '../stores/undo';
import './safety.css';

/** Whether a key press is the platform's undo (Ctrl+Z, or ⌘Z on a Mac), not redo (with Shift). */
function isUndoKey(event: KeyboardEvent): boolean {
  return event.key.toLowerCase() === 'z' && (event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey;
}

/** Whether the key press belongs to a text field, where Ctrl+Z undoes typing. */
function inTextField(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement)
  );
}

export function UndoBar() {
  const { offer, problem, undo, dismiss } = useUndoStore();
  // While Undo is offered, Ctrl+Z / ⌘Z outside a text field takes it, as in a desktop app.
  useEffect(() => {
    if (!offer) return;
    const onKeyDown = (event: KeyboardEvent) => {
      if (!isUndoKey(event) || inTextField(event.target) || event.defaultPrevented) return;
      event.preventDefault();
      void undo();
    };
    window.addEventListener('keydown', onKeyDown);
    return () => window.removeEventListener('keydown', onKeyDown);
  }, [offer, undo]);
  if (!offer && !problem) return null;
  return (
    <div className="undo-bar" role="status" aria-label="Undo">
      <span data-testid="undo-message">{offer ? offer.message : problem}</span>
      {offer && (
        <button
          type="button"
          onClick={() => void undo()}
          title={`Offered for ${UNDO_SECONDS} seconds (Ctrl+Z)`}
          aria-keyshortcuts="Control+Z Meta+Z"
        >
          Undo
        </button>
      )}
      <button type="button" className="secondary small" onClick={dismiss} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}
