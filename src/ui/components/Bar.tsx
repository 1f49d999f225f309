// A fraction as a horizontal bar with its percentage, for accuracies and probabilities in tables.

import { formatPercent } from '../format';

export function Bar({ value, highlight }: { value: number; highlight?: boolean }) {
  return (
    <span className={`bar ${highlight ? 'bar-highlight' : ''}`}>
      <span className="bar-fill" style={{ width: `${Math.round(100 * value)}%` }} />
      <span className="bar-value">{formatPercent(value)}</span>
    </span>
  );
}
