// The Evaluate screen: an adapter against the zero-shot model on the held-out images of its split:
// overall and per-class accuracy, the confusion matrix, and the images it gets wrong.

import { useMemo, useState, type CSSProperties } from 'react';
import { Screen } from '../components/Screen';
import { ClassBarTable } from '../components/Bar';
import { Card } from '../components/Card';
import { SelectField } from '../components/fields';
import { Note, Problem } from '../components/Notice';
import { saveFile } from '../download';
import { formatPercent } from '../format';
import { MANY_CLASSES } from '../scale';
import { sectionHref } from '../navigation';
import { useAdaptersStore } from '../stores/adapters';
import { useDatasetStore } from '../stores/dataset';
import { useEvaluationStore, type EvaluationResult } from '../stores/evaluation';

export function EvaluateScreen() {
  const result = useEvaluationStore((s) => s.result);
  const adapterId = useEvaluationStore((s) => s.adapterId);
  const shown = result && result.adapterId === adapterId ? result : null;
  return (
    <Screen
      title="Evaluate"
      intro={
        <>
          How an adapter does on images it never trained on, against CLIP&rsquo;s zero-shot accuracy on the same images.
        </>
      }
    >
      <ChooseCard />
      {shown && (
        <>
          <SummaryCard result={shown} />
          <PerClassCard result={shown} />
          <ConfusionCard result={shown} />
          <MistakesCard result={shown} />
        </>
      )}
    </Screen>
  );
}

function ChooseCard() {
  const adapters = useAdaptersStore((s) => s.adapters);
  const { adapterId, running, problem, choose, evaluate } = useEvaluationStore();
  const chosen = adapters.find((a) => a.id === adapterId) ?? adapters[0];
  if (adapters.length === 0) {
    return (
      <Card title="Adapter">
        <p>
          No adapters yet: <a href={sectionHref('train')}>train one</a> or{' '}
          <a href={sectionHref('adapters')}>import one</a>.
        </p>
      </Card>
    );
  }
  return (
    <Card title="Adapter" busy={running}>
      <div className="inline-form">
        <SelectField
          label="Adapter to evaluate"
          value={chosen.id}
          options={adapters.map((a) => ({ value: a.id, label: a.name }))}
          onChange={(id) => choose(id)}
        />
        <button type="button" disabled={running} onClick={() => void evaluate(chosen)}>
          {running ? 'Evaluating…' : 'Evaluate on held-out images'}
        </button>
      </div>
      {problem && (
        <Problem title="Could not evaluate">
          <p>{problem}</p>
        </Problem>
      )}
    </Card>
  );
}

function SummaryCard({ result }: { result: EvaluationResult }) {
  const count = result.images.imageIds.length;
  const gain = result.adapted.accuracy - result.zeroShot.accuracy;
  return (
    <Card title="Accuracy">
      <dl className="facts big" data-testid="accuracy-summary">
        <div>
          <dt>Zero-shot</dt>
          <dd data-testid="zero-shot-accuracy">{formatPercent(result.zeroShot.accuracy)}</dd>
        </div>
        <div>
          <dt>Adapted</dt>
          <dd data-testid="adapted-accuracy">{formatPercent(result.adapted.accuracy)}</dd>
        </div>
        <div>
          <dt>Change</dt>
          <dd>
            {gain >= 0 ? '+' : '−'}
            {(100 * Math.abs(gain)).toFixed(1)} points
          </dd>
        </div>
      </dl>
      <p className="muted" data-testid="evaluation-source">
        On {count} held-out {count === 1 ? 'image' : 'images'} of {result.classNames.length} classes,{' '}
        {result.source === 'training' ? 'measured as training finished.' : 'measured from the adapter file.'}
      </p>
      {result.allImages && (
        <Note>
          This adapter does not record its split, so every image of its classes was used, including ones it may have
          trained on.
        </Note>
      )}
    </Card>
  );
}

function PerClassCard({ result }: { result: EvaluationResult }) {
  const evaluated = new Set(result.images.labels);
  const unevaluated = result.classNames.flatMap((_, c) => (evaluated.has(c) ? [] : [c]));
  return (
    <Card title="Per class">
      <ClassBarTable
        label="Per-class accuracy"
        classNames={result.classNames}
        emptyRows={{ rows: new Set(unevaluated), text: 'no held-out images' }}
        columns={[
          { title: 'Zero-shot', values: result.zeroShot.perClassAccuracy },
          { title: 'Adapted', values: result.adapted.perClassAccuracy },
        ]}
      />
    </Card>
  );
}

function ConfusionCard({ result }: { result: EvaluationResult }) {
  const { confusion } = result.adapted;
  const download = () => saveFile(confusionCsv(result.classNames, confusion), 'confusion-matrix.csv', 'text/csv');
  const many = result.classNames.length > MANY_CLASSES;
  return (
    <Card title={many ? 'Most confused classes (adapted)' : 'Confusion matrix (adapted)'}>
      {many ? (
        <ConfusedPairs classNames={result.classNames} confusion={confusion} />
      ) : (
        <ConfusionTable classNames={result.classNames} confusion={confusion} />
      )}
      <div className="actions">
        <button type="button" className="secondary small" onClick={download}>
          Download the confusion matrix (CSV)
        </button>
      </div>
    </Card>
  );
}

function ConfusionTable({ classNames, confusion }: { classNames: readonly string[]; confusion: number[][] }) {
  const max = Math.max(1, ...confusion.flat());
  return (
    <>
      <p className="muted">Rows are the true classes, columns the predicted ones; the diagonal is correct.</p>
      <div className="table-scroll">
        <table className="confusion" aria-label="Confusion matrix">
          <thead>
            <tr>
              <td />
              {classNames.map((name) => (
                <th key={name} scope="col">
                  {name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {confusion.map((row, t) => (
              <tr key={classNames[t]}>
                <th scope="row">{classNames[t]}</th>
                {row.map((count, p) => (
                  <td
                    // biome-ignore lint/suspicious/noArrayIndexKey: column p is class p
                    key={p}
                    className={t === p ? 'diagonal' : ''}
                    style={{ '--weight': count / max } as CSSProperties}
                  >
                    {count}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** Pairs listed when the matrix has too many classes to read. */
const CONFUSED_PAIRS_SHOWN = 15;

/** The off-diagonal cells with the most images, largest first. */
function ConfusedPairs({ classNames, confusion }: { classNames: readonly string[]; confusion: number[][] }) {
  const pairs = confusion
    .flatMap((row, t) => row.map((count, p) => ({ t, p, count, of: row.reduce((sum, n) => sum + n, 0) })))
    .filter(({ t, p, count }) => t !== p && count > 0)
    .sort((a, b) => b.count - a.count)
    .slice(0, CONFUSED_PAIRS_SHOWN);
  if (pairs.length === 0) return <p>No confusions: every held-out image is classified correctly.</p>;
  return (
    <>
      <p className="muted">
        {classNames.length} classes are too many for a readable matrix: these are the pairs the adapter mixes up most.
        The CSV has every cell.
      </p>
      <ol className="confused-pairs" aria-label="Most confused pairs">
        {pairs.map(({ t, p, count, of }) => (
          <li key={`${t}-${p}`}>
            <strong>{classNames[t]}</strong> taken for <strong>{classNames[p]}</strong>: {count} of {of}
          </li>
        ))}
      </ol>
    </>
  );
}

/** The confusion matrix as CSV: a header row of predicted classes, a row per true class. */
function confusionCsv(classNames: readonly string[], confusion: number[][]): string {
  const cell = (text: string) => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
  const header = ['true / predicted', ...classNames].map(cell).join(',');
  return `${[header, ...confusion.map((row, t) => [cell(classNames[t]), ...row].join(','))].join('\n')}\n`;
}

/** Mistakes shown before "Show all": a long list of thumbnails is slow and hard to read. */
const MISTAKES_SHOWN = 48;

function MistakesCard({ result }: { result: EvaluationResult }) {
  const images = useDatasetStore((s) => s.images);
  const [showAll, setShowAll] = useState(false);
  const byId = useMemo(() => new Map(images.map((image) => [image.id, image])), [images]);
  const mistakes = result.images.imageIds
    .map((id, i) => ({
      id,
      label: result.images.labels[i],
      predicted: result.adapted.predictions[i],
      zeroShot: result.zeroShot.predictions[i],
    }))
    .filter((item) => item.predicted !== item.label);
  return (
    <Card title={`Images it gets wrong (${mistakes.length})`}>
      {mistakes.length === 0 ? (
        <p>None: every held-out image is classified correctly.</p>
      ) : (
        <ul className="mistakes" aria-label="Misclassified images">
          {(showAll ? mistakes : mistakes.slice(0, MISTAKES_SHOWN)).map((item) => {
            const image = byId.get(item.id);
            return (
              <li key={item.id}>
                {image ? (
                  <img src={image.thumbnailUrl} alt={image.name} />
                ) : (
                  <span className="missing-image">deleted</span>
                )}
                <span>
                  <strong>{result.classNames[item.label]}</strong> taken for{' '}
                  <strong>{result.classNames[item.predicted]}</strong>
                  {item.zeroShot === item.label && <span className="muted"> (zero-shot had it right)</span>}
                </span>
              </li>
            );
          })}
        </ul>
      )}
      {!showAll && mistakes.length > MISTAKES_SHOWN && (
        <div className="actions">
          <button type="button" className="secondary small" onClick={() => setShowAll(true)}>
            Show all {mistakes.length}
          </button>
        </div>
      )}
    </Card>
  );
}
