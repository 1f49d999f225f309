// A fraction as a horizontal bar with its percentage, for accuracies and probabilities in tables, and
// the table of them a row per class.

import { formatPercent } from '../format';

export function Bar({ value, highlight }: { value: number; highlight?: boolean }) {
  return (
    <span className={`bar ${highlight ? 'bar-highlight' : ''}`}>
      <span className="bar-fill" style={{ width: `${Math.round(100 * value)}%` }} />
      <span className="bar-value">{formatPercent(value)}</span>
    </span>
  );
}

/** One column of ClassBarTable: a value per class; `highlight` marks one class's bar (the top one). */
export interface ClassBarColumn {
  title: string;
  values: readonly number[];
  highlight?: number;
}

/**
 * A row per class with a Bar per column: Evaluate's per-class accuracy, Try it's probabilities.
 * `order` lists the classes to show, in the order to show them (default: all, in class order);
 * `emptyRows` are classes with nothing to show, which say why instead of showing a 0% bar.
 */
export function ClassBarTable({
  label,
  classNames,
  columns,
  order,
  emptyRows,
}: {
  label: string;
  classNames: readonly string[];
  columns: readonly ClassBarColumn[];
  order?: readonly number[];
  emptyRows?: { rows: ReadonlySet<number>; text: string };
}) {
  return (
    <div className="table-scroll">
      <table className="data-table" aria-label={label}>
        <thead>
          <tr>
            <th scope="col">Class</th>
            {columns.map((column) => (
              <th key={column.title} scope="col">
                {column.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {(order ?? classNames.map((_, c) => c)).map((c) => (
            <tr key={classNames[c]}>
              <th scope="row">{classNames[c]}</th>
              {emptyRows?.rows.has(c) ? (
                <td colSpan={columns.length} className="muted">
                  {emptyRows.text}
                </td>
              ) : (
                columns.map((column) => (
                  <td key={column.title}>
                    <Bar value={column.values[c]} highlight={c === column.highlight} />
                  </td>
                ))
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
