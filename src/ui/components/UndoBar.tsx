// The bar at the bottom of the studio that offers to undo the last deletion (see stores/undo).

import { UNDO_SECONDS, useUndoStore } from '../stores/undo';
import './safety.css';

export function UndoBar() {
  const { offer, problem, undo, dismiss } = useUndoStore();
  if (!offer && !problem) return null;
  return (
    <div className="undo-bar" role="status" aria-label="Undo">
      <span data-testid="undo-message">{offer ? offer.message : problem}</span>
      {offer && (
        <button type="button" onClick={() => void undo()} title={`Offered for ${UNDO_SECONDS} seconds`}>
          Undo
        </button>
      )}
      <button type="button" className="secondary small" onClick={dismiss} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}
