// A small line chart in SVG: steps across, values up, a few gridlines with labels. The figure's
// accessible name says what the latest values are, so the chart is not the only way to read them.

export interface ChartSeries {
  name: string;
  points: readonly { x: number; y: number }[];
  tone: 'accent' | 'faint' | 'good' | 'muted';
  /** Draw a dot at each point (sparse series such as held-out evaluations). */
  dots?: boolean;
  dashed?: boolean;
}

const WIDTH = 560;
const HEIGHT = 200;
const PAD = { left: 48, right: 12, top: 10, bottom: 28 };
const Y_TICKS = 4;
/** Points drawn per series at most: about one per two pixels of the plot; a long run's thousands of steps would only slow the page. */
const MAX_POINTS = 256;

/** Every k-th point and the last, so that at most MAX_POINTS remain. */
function thin<T>(points: readonly T[]): readonly T[] {
  if (points.length <= MAX_POINTS) return points;
  const stride = Math.ceil(points.length / MAX_POINTS);
  return points.filter((_, i) => i % stride === 0 || i === points.length - 1);
}

export function LineChart(props: {
  title: string;
  series: readonly ChartSeries[];
  xMax: number;
  /** Fixed range (accuracy is 0..1); otherwise from the data. */
  yRange?: [number, number];
  formatY(value: number): string;
  summary: string;
}) {
  const values = props.series.flatMap((s) => s.points.map((p) => p.y));
  const [yMin, yMax] = props.yRange ?? dataRange(values);
  const xMax = Math.max(1, props.xMax);
  const x = (value: number) => PAD.left + (value / xMax) * (WIDTH - PAD.left - PAD.right);
  const y = (value: number) =>
    HEIGHT - PAD.bottom - ((value - yMin) / (yMax - yMin || 1)) * (HEIGHT - PAD.top - PAD.bottom);
  const ticks = Array.from({ length: Y_TICKS + 1 }, (_, i) => yMin + ((yMax - yMin) * i) / Y_TICKS);
  const series = props.series.map((s) => ({ ...s, points: thin(s.points) }));
  const pointCount = series.reduce((sum, s) => sum + s.points.length, 0);
  return (
    <figure className="chart">
      <figcaption>
        <span className="chart-title">{props.title}</span>
        {/* A list, so that its items read apart ("batch loss", "trend"), not run together as one word. */}
        <ul className="chart-legend" aria-label={`${props.title} legend`}>
          {props.series.map((s) => (
            <li key={s.name} className={`legend legend-${s.tone}`}>
              {s.name}
            </li>
          ))}
        </ul>
      </figcaption>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={`${props.title}: ${props.summary}`}
        data-points={pointCount}
      >
        {ticks.map((tick) => (
          <g key={tick} className="chart-grid">
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(tick)} y2={y(tick)} />
            <text x={PAD.left - 6} y={y(tick)} dy="0.32em" textAnchor="end">
              {props.formatY(tick)}
            </text>
          </g>
        ))}
        <g className="chart-grid">
          <text x={PAD.left} y={HEIGHT - 8} textAnchor="start">
            0
          </text>
          <text x={WIDTH - PAD.right} y={HEIGHT - 8} textAnchor="end">
            step {xMax}
          </text>
        </g>
        {series.map((s) => (
          <g key={s.name} className={`series series-${s.tone}`}>
            {s.points.length > 1 && (
              <polyline
                points={s.points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ')}
                strokeDasharray={s.dashed ? '6 4' : undefined}
              />
            )}
            {(s.dots || s.points.length === 1) &&
              s.points.map((p) => <circle key={p.x} cx={x(p.x)} cy={y(p.y)} r={3.5} />)}
          </g>
        ))}
      </svg>
    </figure>
  );
}

/** The data's range with a little room, never empty. */
function dataRange(values: readonly number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  const low = Math.min(...values);
  const high = Math.max(...values);
  const room = (high - low) * 0.08 || Math.abs(high) * 0.1 || 1;
  return [Math.max(0, low - room), high + room];
}
