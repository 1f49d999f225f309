// The Adapter library: every adapter trained here or imported, with its settings and results;
// rename, delete, compare side by side, use in Try it, download (octoclip's file, or PEFT's two files)
// and import.

import { classifierSnippets } from '../../common/api-snippet';
import type { AdapterRecord } from '../../storage/db';
import { Screen } from '../components/Screen';
import { Badge, Card } from '../components/Card';
import { FilePicker } from '../components/DropZone';
import { InlineRename } from '../components/fields';
import { Problem } from '../components/Notice';
import { formatBytes, formatDateTime, formatPercent } from '../format';
import { sectionHref } from '../navigation';
import { PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../../common/file-names';
import { adapterFileName, useAdaptersStore } from '../stores/adapters';
import { useEvaluationStore } from '../stores/evaluation';
import { usePredictionStore } from '../stores/prediction';

export function LibraryScreen() {
  const adapters = useAdaptersStore((s) => s.adapters);
  return (
    <Screen
      title="Adapter library"
      intro={
        <>
          Adapters are small: a few hundred kilobytes on top of the base model. They are kept in this browser; download
          them to use elsewhere, with octoclip or with Hugging Face PEFT.
        </>
      }
    >
      <ImportCard />
      <CompareCard />
      {adapters.length === 0 ? (
        <Card title="No adapters yet">
          <p>
            <a href={sectionHref('train')}>Train one</a>, or import an adapter file above.
          </p>
        </Card>
      ) : (
        <ul className="adapter-list" aria-label="Adapters">
          {adapters.map((adapter) => (
            <AdapterItem key={adapter.id} adapter={adapter} />
          ))}
        </ul>
      )}
    </Screen>
  );
}

function ImportCard() {
  const { importFile, importPeft, busy, problem, notice, dismissProblem } = useAdaptersStore();
  return (
    <Card title="Import">
      <p>
        An octoclip adapter file (<code>.octoclip.safetensors</code>) made for the loaded model.
      </p>
      <FilePicker
        label="Import an adapter file"
        accept=".safetensors"
        disabled={busy}
        onFiles={(files) => void importFile(files[0])}
      />
      <p>
        Or a PEFT LoRA adapter for the loaded model (from octoclip&apos;s PEFT export, or trained in PyTorch with PEFT),
        as its zip or its folder (<code>adapter_config.json</code>, <code>adapter_model.safetensors</code>,{' '}
        <code>classes.json</code>).
      </p>
      <div className="actions wrap">
        <FilePicker
          label="Import a PEFT zip"
          accept=".zip"
          secondary
          disabled={busy}
          onFiles={(files) => void importPeft([...files])}
        />
        <FilePicker
          label="Import a PEFT folder"
          directory
          secondary
          disabled={busy}
          onFiles={(files) => void importPeft([...files])}
        />
      </div>
      {notice && (
        <p role="status" className="status-line">
          {notice}
        </p>
      )}
      {problem && (
        <Problem title="Not done" onDismiss={dismissProblem}>
          <p data-testid="library-problem">{problem}</p>
        </Problem>
      )}
    </Card>
  );
}

function metric(adapter: AdapterRecord, key: string): number | null {
  const value = adapter.meta.metrics[key];
  return typeof value === 'number' ? value : null;
}

function percentOrDash(value: number | null): string {
  return value === null ? '—' : formatPercent(value);
}

function methodLabel(adapter: AdapterRecord): string {
  const { method, rank, blocks } = adapter.meta;
  return method === 'lora' ? `LoRA, r = ${rank}` : `Block-LoRA, r = ${rank}, n = ${blocks}`;
}

function AdapterItem({ adapter }: { adapter: AdapterRecord }) {
  const { rename, remove, download, downloadPeft, downloadPeftZip, toggleCompared, compared, busy } =
    useAdaptersStore();
  const chooseForTry = usePredictionStore((s) => s.chooseAdapter);
  const chooseForEvaluation = useEvaluationStore((s) => s.choose);
  const { meta } = adapter;
  const zeroShot = metric(adapter, 'zeroShotAccuracy');
  const heldOut = metric(adapter, 'heldOutAccuracy');
  return (
    <li className="card adapter-item" aria-label={`Adapter ${adapter.name}`}>
      <header className="class-header">
        <InlineRename
          label={`Name of adapter ${adapter.name}`}
          value={adapter.name}
          onCommit={(name) => void rename(adapter.id, name)}
        />
        <Badge tone="good">{adapter.source === 'trained' ? 'Trained here' : 'Imported'}</Badge>
      </header>
      <dl className="facts">
        <div>
          <dt>Method</dt>
          <dd>{methodLabel(adapter)}</dd>
        </div>
        <div className="class-list">
          <dt>Classes</dt>
          <dd>{meta.classNames.join(', ')}</dd>
        </div>
        <div>
          <dt>Held-out accuracy</dt>
          <dd data-testid="adapter-accuracy">
            {percentOrDash(heldOut)} <span className="muted">(zero-shot {percentOrDash(zeroShot)})</span>
          </dd>
        </div>
        <div>
          <dt>Base model</dt>
          <dd>{meta.baseModel}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatDateTime(adapter.createdAt)}</dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd>{formatBytes(adapter.file.size)}</dd>
        </div>
      </dl>
      <div className="actions wrap">
        <button
          type="button"
          className="small"
          onClick={() => void download(adapter.id)}
          aria-label={`Download ${adapter.name}`}
        >
          Download
        </button>
        <button
          type="button"
          className="secondary small"
          disabled={busy}
          onClick={() => void downloadPeftZip(adapter.id)}
          aria-label={`Download the PEFT export of ${adapter.name} as a zip`}
        >
          PEFT (.zip)
        </button>
        <button
          type="button"
          className="secondary small"
          disabled={busy}
          onClick={() => void downloadPeft(adapter.id, 'weights')}
          aria-label={`Download ${PEFT_WEIGHTS_FILE} (PEFT) of ${adapter.name}`}
        >
          PEFT: {PEFT_WEIGHTS_FILE}
        </button>
        <button
          type="button"
          className="secondary small"
          disabled={busy}
          onClick={() => void downloadPeft(adapter.id, 'config')}
          aria-label={`Download ${PEFT_CONFIG_FILE} (PEFT) of ${adapter.name}`}
        >
          PEFT: {PEFT_CONFIG_FILE}
        </button>
        <span className="separator" />
        <a
          className="button secondary small"
          href={sectionHref('try')}
          onClick={() => void chooseForTry(adapter.id)}
          aria-label={`Try ${adapter.name}`}
        >
          Try it
        </a>
        <a
          className="button secondary small"
          href={sectionHref('evaluate')}
          onClick={() => chooseForEvaluation(adapter.id)}
          aria-label={`Evaluate ${adapter.name}`}
        >
          Evaluate
        </a>
        <label className="checkbox">
          <input type="checkbox" checked={compared.includes(adapter.id)} onChange={() => toggleCompared(adapter.id)} />
          Compare
        </label>
        <span className="separator" />
        <button
          type="button"
          className="danger small"
          disabled={busy}
          onClick={() => void remove(adapter.id)}
          aria-label={`Delete ${adapter.name}`}
        >
          Delete
        </button>
      </div>
      <UseInCode adapter={adapter} />
    </li>
  );
}

/** Rows of the comparison table: what each adapter was trained with, and how it did. */
const COMPARISON_ROWS: { label: string; value(adapter: AdapterRecord): string }[] = [
  { label: 'Method', value: methodLabel },
  { label: 'Adapted matrices', value: (a) => a.meta.targets.join(', ') },
  {
    label: 'Encoders',
    value: (a) => (['text', 'vision'] as const).filter((t) => a.meta.layers[t].length > 0).join(', '),
  },
  { label: 'Alpha, scaling', value: (a) => `${a.meta.alpha}, ${a.meta.scalingRule}` },
  { label: 'Dropout', value: (a) => String(a.meta.dropout) },
  { label: 'Shots', value: (a) => String(a.meta.training.shots ?? '—') },
  { label: 'Iterations', value: (a) => String(a.meta.training.iterations ?? '—') },
  { label: 'Batch size', value: (a) => String(a.meta.training.batchSize ?? '—') },
  { label: 'Learning rate', value: (a) => String(a.meta.training.lr ?? '—') },
  { label: 'Seed', value: (a) => String(a.meta.training.seed ?? '—') },
  { label: 'Precision', value: (a) => String(a.meta.training.precision ?? '—') },
  { label: 'Zero-shot accuracy', value: (a) => percentOrDash(metric(a, 'zeroShotAccuracy')) },
  { label: 'Held-out accuracy', value: (a) => percentOrDash(metric(a, 'heldOutAccuracy')) },
  { label: 'Training-set accuracy', value: (a) => percentOrDash(metric(a, 'supportAccuracy')) },
  { label: 'Final loss', value: (a) => metric(a, 'finalLoss')?.toFixed(4) ?? '—' },
  { label: 'File size', value: (a) => formatBytes(a.file.size) },
];

function CompareCard() {
  const adapters = useAdaptersStore((s) => s.adapters);
  const compared = useAdaptersStore((s) => s.compared);
  const chosen = compared
    .map((id) => adapters.find((a) => a.id === id))
    .filter((a): a is AdapterRecord => a !== undefined);
  if (chosen.length < 2) {
    return adapters.length >= 2 ? (
      <p className="muted">Tick “Compare” on two or more adapters to see them side by side.</p>
    ) : null;
  }
  return (
    <Card title="Comparison">
      <div className="table-scroll">
        <table className="data-table" aria-label="Adapter comparison">
          <thead>
            <tr>
              <td />
              {chosen.map((a) => (
                <th key={a.id} scope="col">
                  {a.name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {COMPARISON_ROWS.map((row) => (
              <tr key={row.label}>
                <th scope="row">{row.label}</th>
                {chosen.map((a) => (
                  <td key={a.id}>{row.value(a)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

/** The library API's snippet for this adapter (src/api), for a web page and for Node. */
function UseInCode({ adapter }: { adapter: AdapterRecord }) {
  const snippets = classifierSnippets({
    name: adapter.name,
    baseModel: adapter.meta.baseModel,
    fileName: adapterFileName(adapter.name),
  });
  return (
    <details className="use-in-code">
      <summary>Use it in your code</summary>
      <p>
        In a web page on this site (with the <code>octoclip</code> package):
      </p>
      <pre data-testid="snippet-browser">{snippets.browser}</pre>
      <p>In Node, with the downloaded file:</p>
      <pre data-testid="snippet-node">{snippets.node}</pre>
    </details>
  );
}
