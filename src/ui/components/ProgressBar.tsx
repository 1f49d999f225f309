// A labelled progress bar; without a maximum it shows activity without a fraction.

import { useId } from 'react';

export function ProgressBar(props: { label: string; value: number; max: number | null; detail?: string }) {
  const labelId = useId();
  const known = props.max !== null && props.max > 0;
  const fraction = known ? Math.min(1, props.value / props.max!) : 0;
  return (
    <div className="progress">
      <div className="progress-label">
        <span id={labelId}>{props.label}</span>
        {props.detail && <span className="progress-detail">{props.detail}</span>}
      </div>
      <div
        className={`progress-track ${known ? '' : 'progress-indeterminate'}`}
        role="progressbar"
        aria-labelledby={labelId}
        aria-valuemin={0}
        aria-valuemax={known ? 100 : undefined}
        aria-valuenow={known ? Math.round(100 * fraction) : undefined}
        aria-valuetext={props.detail}
      >
        <div className="progress-fill" style={{ width: known ? `${100 * fraction}%` : undefined }} />
      </div>
    </div>
  );
}
