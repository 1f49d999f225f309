// Messages that ask for attention: a problem with what to do about it, or a neutral note.

import type { ReactNode } from 'react';

/** Something went wrong: what happened, and (when there is one) the action that helps. */
export function Problem(props: {
  title: string;
  action?: string;
  onAction?: () => void;
  onDismiss?: () => void;
  children: ReactNode;
}) {
  return (
    <div className="problem" role="alert">
      <h3>{props.title}</h3>
      {props.children}
      <div className="actions">
        {props.action && props.onAction && (
          <button type="button" onClick={props.onAction}>
            {props.action}
          </button>
        )}
        {props.onDismiss && (
          <button type="button" className="secondary" onClick={props.onDismiss}>
            Dismiss
          </button>
        )}
      </div>
    </div>
  );
}

/** A note that is not an error: a warning to consider, or where to go next. */
export function Note(props: { children: ReactNode }) {
  return <div className="note">{props.children}</div>;
}
