// A button for what cannot be undone: the first press asks, in place, and only the answer acts.

import { useState, type ReactNode } from 'react';
import './safety.css';

export function ConfirmButton(props: {
  children: ReactNode;
  /** What will be lost, asked as a question. */
  question: string;
  /** The confirming button's text ("Delete"). */
  confirm: string;
  onConfirm: () => void;
  className?: string;
  disabled?: boolean;
  'aria-label'?: string;
}) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button
        type="button"
        className={props.className}
        disabled={props.disabled}
        aria-label={props['aria-label']}
        onClick={() => setAsking(true)}
      >
        {props.children}
      </button>
    );
  }
  return (
    // biome-ignore lint/a11y/useSemanticElements: an inline question and its two buttons, not a form's fieldset
    <span className="confirm" role="group" aria-label="Confirm">
      <span>{props.question}</span>
      <button
        type="button"
        className="danger"
        disabled={props.disabled}
        onClick={() => {
          setAsking(false);
          props.onConfirm();
        }}
      >
        {props.confirm}
      </button>
      <button type="button" className="secondary" onClick={() => setAsking(false)}>
        Keep
      </button>
    </span>
  );
}
