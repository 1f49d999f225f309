// The Evaluate screen: an adapter against the zero-shot model on the held-out images of its split:
// overall and per-class accuracy, the confusion matrix, and the images it gets wrong.

import { useMemo, type CSSProperties } from 'react';
import { Screen } from '../components/Screen';
import { ClassBarTable } from '../components/Bar';
import { Card } from '../components/Card';
import { SelectField } from '../components/fields';
import { Note, Problem } from '../components/Notice';
import { formatPercent } from '../format';
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
      intro={<>How an adapter does on images it never trained on, against CLIP&rsquo;s zero-shot accuracy on the same images.</>}
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
          No adapters yet: <a href={sectionHref('train')}>train one</a> or <a href={sectionHref('adapters')}>import one</a>.
        </p>
      </Card>
    );
  }
  return (
    <Card title="Adapter" busy={running}>
      <div className="inline-form">
        <SelectField label="Adapter to evaluate" value={chosen.id} options={adapters.map((a) => ({ value: a.id, label: a.name }))} onChange={(id) => choose(id)} />
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
      {result.allImages && <Note>This adapter does not record its split, so every image of its classes was used, including ones it may have trained on.</Note>}
    </Card>
  );
}

function PerClassCard({ result }: { result: EvaluationResult }) {
  return (
    <Card title="Per class">
      <ClassBarTable
        label="Per-class accuracy"
        classNames={result.classNames}
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
  const max = Math.max(1, ...confusion.flat());
  return (
    <Card title="Confusion matrix (adapted)">
      <p className="muted">Rows are the true classes, columns the predicted ones; the diagonal is correct.</p>
      <div className="table-scroll">
        <table className="confusion" aria-label="Confusion matrix">
          <thead>
            <tr>
              <td />
              {result.classNames.map((name) => (
                <th key={name} scope="col">
                  {name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {confusion.map((row, t) => (
              <tr key={result.classNames[t]}>
                <th scope="row">{result.classNames[t]}</th>
                {row.map((count, p) => (
                  <td key={p} className={t === p ? 'diagonal' : ''} style={{ '--weight': count / max } as CSSProperties}>
                    {count}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

function MistakesCard({ result }: { result: EvaluationResult }) {
  const images = useDatasetStore((s) => s.images);
  const byId = useMemo(() => new Map(images.map((image) => [image.id, image])), [images]);
  const mistakes = result.images.imageIds
    .map((id, i) => ({ id, label: result.images.labels[i], predicted: result.adapted.predictions[i], zeroShot: result.zeroShot.predictions[i] }))
    .filter((item) => item.predicted !== item.label);
  return (
    <Card title={`Images it gets wrong (${mistakes.length})`}>
      {mistakes.length === 0 ? (
        <p>None: every held-out image is classified correctly.</p>
      ) : (
        <ul className="mistakes" aria-label="Misclassified images">
          {mistakes.map((item) => {
            const image = byId.get(item.id);
            return (
              <li key={item.id}>
                {image ? <img src={image.thumbnailUrl} alt={image.name} /> : <span className="missing-image">deleted</span>}
                <span>
                  <strong>{result.classNames[item.label]}</strong> taken for <strong>{result.classNames[item.predicted]}</strong>
                  {item.zeroShot === item.label && <span className="muted"> (zero-shot had it right)</span>}
                </span>
              </li>
            );
          })}
        </ul>
      )}
    </Card>
  );
}
