// The Model screen: a CLIP from the Hugging Face Hub (downloaded once into the browser's storage,
// resumable) or from local files, the model cache with its size, and the model the engine has loaded.

import { useEffect, useId, useState, type ReactNode } from 'react';
import { Screen } from '../components/Screen';
import { Badge, Card } from '../components/Card';
import { ConfirmButton } from '../components/ConfirmButton';
import { DropZone, FilePicker } from '../components/DropZone';
import { Note, Problem } from '../components/Notice';
import { ProgressBar } from '../components/ProgressBar';
import { filesFromDrop } from '../dropped-files';
import { formatByteRate, formatBytes, formatDateTime, formatTimeLeft } from '../format';
import { DEFAULT_HUB_MODEL, useModelStore, type ModelActivity } from '../stores/model';

export function ModelScreen() {
  return (
    <Screen
      title="Model"
      intro={
        <>
          Choose the CLIP to fine-tune. Its files are kept in this browser, so the next visit loads them from disk, even
          offline.
        </>
      }
    >
      <LoadedModelCard />
      <ModelProblem />
      <HubCard />
      <LocalFilesCard />
      <CacheCard />
    </Screen>
  );
}

function LoadedModelCard() {
  const loaded = useModelStore((s) => s.loaded);
  const activity = useModelStore((s) => s.activity);
  const lostModelId = useModelStore((s) => s.lostModelId);
  return (
    <Card
      title="Loaded model"
      badge={
        loaded ? (
          <Badge tone="good">Loaded</Badge>
        ) : activity.kind === 'loading' ? (
          <Badge tone="pending">Loading</Badge>
        ) : (
          <Badge tone="bad">None</Badge>
        )
      }
    >
      <ActivityProgress activity={activity} />
      {loaded ? (
        <>
          <p className="model-id" data-testid="loaded-model">
            {loaded.id}
          </p>
          <dl className="facts">
            <Fact
              term="Vision tower"
              value={`${loaded.config.vision.numLayers} layers, width ${loaded.config.vision.hiddenSize}, ${loaded.config.vision.imageSize} px images in ${loaded.config.vision.patchSize} px patches`}
            />
            <Fact
              term="Text tower"
              value={`${loaded.config.text.numLayers} layers, width ${loaded.config.text.hiddenSize}`}
            />
            {loaded.revision && <Fact term="Hub revision" value={<code>{loaded.revision}</code>} />}
            <Fact term="Weights on the GPU" value={`${formatBytes(loaded.weightBytes)} (${loaded.precision})`} />
            <Fact term="Fingerprint" value={<code>{loaded.fingerprint}</code>} />
          </dl>
        </>
      ) : (
        activity.kind !== 'loading' && (
          <p>
            {lostModelId
              ? `${lostModelId} was on the GPU that was lost: it loads again when the GPU reconnects.`
              : 'No model yet: download one from the Hub or load local files below.'}
          </p>
        )
      )}
    </Card>
  );
}

function Fact(props: { term: string; value: ReactNode }) {
  return (
    <div>
      <dt>{props.term}</dt>
      <dd>{props.value}</dd>
    </div>
  );
}

function ActivityProgress({ activity }: { activity: ModelActivity }) {
  if (activity.kind === 'loading') {
    return (
      <ProgressBar
        label={`Loading ${activity.id} onto the GPU`}
        value={activity.loadedBytes}
        max={activity.totalBytes}
        detail={`${formatBytes(activity.loadedBytes)} of ${formatBytes(activity.totalBytes)}`}
      />
    );
  }
  return null;
}

function ModelProblem() {
  const problem = useModelStore((s) => s.problem);
  const download = useModelStore((s) => s.download);
  const dismiss = useModelStore((s) => s.dismissProblem);
  if (!problem) return null;
  const repo = problem.resumableRepo;
  return (
    <Problem
      title="The model could not be loaded"
      action={repo ? 'Retry download' : undefined}
      onAction={repo ? () => void download(repo) : undefined}
      onDismiss={dismiss}
    >
      <p data-testid="model-problem">{problem.message}</p>
    </Problem>
  );
}

function HubCard() {
  const activity = useModelStore((s) => s.activity);
  const download = useModelStore((s) => s.download);
  const stop = useModelStore((s) => s.stopDownload);
  const hubToken = useModelStore((s) => s.hubToken);
  const setHubToken = useModelStore((s) => s.setHubToken);
  const [repo, setRepo] = useState<string>(DEFAULT_HUB_MODEL);
  const inputId = useId();
  const tokenId = useId();
  const listId = useId();
  const busy = activity.kind !== 'idle';
  const planned = useModelStore((s) => s.suggested);
  const suggested = planned ?? [];
  const loadSuggested = useModelStore((s) => s.loadSuggested);
  useEffect(() => {
    void loadSuggested();
  }, [loadSuggested]);
  return (
    <Card title="From the Hugging Face Hub">
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          void download(repo.trim());
        }}
      >
        <div className="field grow">
          <label htmlFor={inputId}>Repository</label>
          <input
            id={inputId}
            list={listId}
            value={repo}
            onChange={(event) => setRepo(event.target.value)}
            spellCheck={false}
            autoComplete="off"
          />
          <datalist id={listId}>
            {suggested.map((model) => (
              <option key={model.repo} value={model.repo}>
                {model.name}
              </option>
            ))}
          </datalist>
          <small className="help">
            <code>org/name</code>, or <code>org/name@revision</code> for a branch, tag or commit. Any CLIP repo in the
            transformers layout with <code>model.safetensors</code> (or its shards) works.
          </small>
        </div>
        <button type="submit" disabled={busy || !repo.trim()}>
          Download and load
        </button>
      </form>
      <div className="field">
        <label htmlFor={tokenId}>Access token</label>
        <input
          id={tokenId}
          type="password"
          value={hubToken}
          onChange={(event) => setHubToken(event.target.value)}
          spellCheck={false}
          autoComplete="off"
          placeholder="hf_…"
        />
        <small className="help">
          Only for gated or private repos. Kept in this browser alone, and sent only to the Hugging Face Hub.
        </small>
      </div>
      {activity.kind === 'downloading' && (
        <div className="download">
          <ProgressBar
            label={
              activity.progress
                ? `Downloading ${activity.progress.file} (file ${activity.progress.fileIndex + 1} of ${activity.progress.fileCount})`
                : `Connecting to the Hub for ${activity.repo}`
            }
            value={activity.progress?.receivedBytes ?? 0}
            max={activity.progress?.totalBytes ?? null}
            detail={downloadDetail(activity)}
          />
          <button type="button" className="secondary" onClick={stop}>
            Stop download
          </button>
        </div>
      )}
      <div className="table-scroll">
        <table className="data-table" aria-label="Suggested models">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Download</th>
              <th scope="col">Training memory (batch 32)</th>
              <th scope="col">in micro-batches of 8</th>
              <td />
            </tr>
          </thead>
          <tbody>
            {planned === null && (
              <tr>
                <td colSpan={5} className="muted">
                  Planning each model's training memory on this GPU…
                </td>
              </tr>
            )}
            {suggested.map((model) => (
              <tr key={model.repo}>
                <th scope="row">
                  {model.name} <span className="muted">{model.repo}</span>
                  <br />
                  <small className="muted">{model.note}</small>
                </th>
                <td>{formatBytes(model.downloadBytes)}</td>
                <td>{formatBytes(model.trainingBytes)}</td>
                <td>{formatBytes(model.trainingBytesMicroBatch8)}</td>
                <td>
                  <button
                    type="button"
                    className="secondary"
                    disabled={busy}
                    onClick={() => setRepo(model.repo)}
                    aria-label={`Use ${model.repo}`}
                  >
                    Use
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Note>
        Training memory is the planner’s figure for CLIP-LoRA’s recipe on 10 classes; the Train screen gives it for your
        dataset and settings.
      </Note>
    </Card>
  );
}

function downloadDetail(activity: Extract<ModelActivity, { kind: 'downloading' }>): string {
  const { progress, bytesPerSecond, secondsLeft } = activity;
  if (!progress) return '';
  const parts = [
    progress.totalBytes === null
      ? formatBytes(progress.receivedBytes)
      : `${formatBytes(progress.receivedBytes)} of ${formatBytes(progress.totalBytes)}`,
  ];
  if (bytesPerSecond !== null) parts.push(formatByteRate(bytesPerSecond));
  if (secondsLeft !== null) parts.push(`${formatTimeLeft(secondsLeft)} left`);
  return parts.join(' · ');
}

function LocalFilesCard() {
  const activity = useModelStore((s) => s.activity);
  const loadLocal = useModelStore((s) => s.loadLocal);
  const [name, setName] = useState('my-clip');
  const nameId = useId();
  const busy = activity.kind !== 'idle';
  const load = (files: File[]) => void loadLocal(name, files);
  return (
    <Card title="From files on this computer">
      <p>
        Download <code>config.json</code>, <code>model.safetensors</code> (or <code>model.safetensors.index.json</code>{' '}
        and its shards), <code>vocab.json</code>, <code>merges.txt</code> and <code>preprocessor_config.json</code> from
        a CLIP repo once, then load them here without a connection.
      </p>
      <div className="field">
        <label htmlFor={nameId}>Name for this model</label>
        <input id={nameId} value={name} onChange={(event) => setName(event.target.value)} spellCheck={false} />
        <small className="help">Adapters record it; they are matched to the model by its weights.</small>
      </div>
      <DropZone
        label="Drop model files"
        disabled={busy}
        onDrop={(dataTransfer) => void filesFromDrop(dataTransfer).then((picked) => load(picked.map((p) => p.file)))}
      >
        <p>Drop the model files (or their folder) here, or</p>
        <FilePicker
          label="Choose model files"
          multiple
          disabled={busy}
          accept=".json,.safetensors,.txt,.bin"
          onFiles={(files) => load([...files])}
        />
      </DropZone>
    </Card>
  );
}

function CacheCard() {
  const cached = useModelStore((s) => s.cached);
  const loaded = useModelStore((s) => s.loaded);
  const activity = useModelStore((s) => s.activity);
  const download = useModelStore((s) => s.download);
  const loadCached = useModelStore((s) => s.loadCached);
  const deleteCached = useModelStore((s) => s.deleteCached);
  const clearCache = useModelStore((s) => s.clearCache);
  const total = cached.reduce((sum, model) => sum + model.bytes, 0);
  const estimate = useStorageEstimate(total);
  const busy = activity.kind !== 'idle';
  return (
    <Card title="Model cache">
      <p data-testid="cache-size">
        Models in this browser: <strong>{formatBytes(total)}</strong>
        {estimate &&
          ` (the site uses ${formatBytes(estimate.usage)} of the ${formatBytes(estimate.quota)} the browser allows it)`}
        .
      </p>
      {cached.length === 0 ? (
        <p>Nothing cached yet.</p>
      ) : (
        <ul className="cache-list">
          {cached.map(({ record, complete, bytes }) => (
            <li key={record.id} className="cache-item">
              <div>
                <strong>{record.id}</strong>
                <span className="muted">
                  {' '}
                  · {formatBytes(bytes)} · {record.source === 'hub' ? 'Hugging Face Hub' : 'local files'}
                  {record.lastLoadedAt ? ` · last loaded ${formatDateTime(record.lastLoadedAt)}` : ''}
                </span>
                {!complete && <Badge tone="pending">Partly downloaded</Badge>}
                {loaded?.id === record.id && <Badge tone="good">Loaded</Badge>}
              </div>
              <div className="actions">
                {complete
                  ? loaded?.id !== record.id && (
                      <button
                        type="button"
                        disabled={busy}
                        onClick={() => void loadCached(record.id)}
                        aria-label={`Load ${record.id}`}
                      >
                        Load
                      </button>
                    )
                  : record.source === 'hub' && (
                      <button
                        type="button"
                        disabled={busy}
                        onClick={() => void download(record.id)}
                        aria-label={`Resume download of ${record.id}`}
                      >
                        Resume download
                      </button>
                    )}
                <ConfirmButton
                  className="secondary"
                  disabled={busy}
                  onConfirm={() => void deleteCached(record.id)}
                  aria-label={`Delete ${record.id} from the cache`}
                  question={`Delete ${record.id} (${formatBytes(bytes)})? Using it again means downloading or adding its files again.`}
                  confirm="Delete"
                >
                  Delete
                </ConfirmButton>
              </div>
            </li>
          ))}
        </ul>
      )}
      <ConfirmButton
        className="danger"
        disabled={busy || cached.length === 0}
        onConfirm={() => void clearCache()}
        question={`Delete every cached model (${formatBytes(total)})? Using them again means downloading or adding their files again.`}
        confirm="Clear model cache"
      >
        Clear model cache
      </ConfirmButton>
      <Note>
        Clearing removes downloaded model files only; the loaded model stays on the GPU until the page closes, and your
        dataset and adapters are kept.
      </Note>
    </Card>
  );
}

/** The browser's own figure for this site's storage, refreshed when the cache changes. */
function useStorageEstimate(revision: unknown): { usage: number; quota: number } | null {
  const [estimate, setEstimate] = useState<{ usage: number; quota: number } | null>(null);
  // biome-ignore lint/correctness/useExhaustiveDependencies: revision is what changes when the stored models do
  useEffect(() => {
    let current = true;
    void navigator.storage?.estimate().then(({ usage, quota }) => {
      if (current && usage !== undefined && quota !== undefined) setEstimate({ usage, quota });
    });
    return () => {
      current = false;
    };
  }, [revision]);
  return estimate;
}
