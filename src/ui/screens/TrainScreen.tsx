// The Train screen: the recipe's settings (with an Advanced panel), what a run will cost before it
// starts, and the run itself: live loss and accuracy, speed, time left, pause, resume and cancel.

import { useEffect, useRef, useState } from 'react';
import {
  ITERATIONS_PER_SHOT,
  PRECISION_HELP,
  PRECISION_SETTINGS,
  missingFeature,
  RECIPE_ADAPTER,
  RECIPE_PRECISION,
} from '../../common/recipe';
import type { TargetMatrix, Tower } from '../../worker/protocol';
import { Screen } from '../components/Screen';
import { Badge, Card } from '../components/Card';
import { CheckboxGroup, NumberField, RadioGroup, SelectField } from '../components/fields';
import { LineChart, type ChartSeries } from '../components/LineChart';
import { Note } from '../components/Notice';
import { ProgressBar } from '../components/ProgressBar';
import { formatBytes, formatCount, formatPercent, formatTimeLeft } from '../format';
import { sectionHref } from '../navigation';
import { SplitFields } from './SplitFields';
import { StartCard } from './StartCard';
import { useDatasetStore } from '../stores/dataset';
import { useEngineStore } from '../stores/engine';
import { useModelStore } from '../stores/model';
import { usePredictionStore } from '../stores/prediction';
import { isRunActive, type RunState, useTrainingStore } from '../stores/training';

const TARGET_OPTIONS: { value: TargetMatrix; label: string }[] = [
  { value: 'q_proj', label: 'q' },
  { value: 'k_proj', label: 'k' },
  { value: 'v_proj', label: 'v' },
  { value: 'out_proj', label: 'o (attention output)' },
  { value: 'fc1', label: 'fc1' },
  { value: 'fc2', label: 'fc2' },
];
const TOWER_OPTIONS: { value: Tower; label: string }[] = [
  { value: 'text', label: 'Text encoder' },
  { value: 'vision', label: 'Vision encoder' },
];
/** How long settings rest before the engine is asked what they cost. */
const PLAN_DELAY_MS = 250;

export function TrainScreen() {
  return (
    <Screen
      title="Train"
      intro={
        <>
          Fine-tune small adapters on both CLIP encoders. The defaults are CLIP-LoRA&rsquo;s recipe; the frozen model is
          never changed.
        </>
      }
    >
      <RunCard />
      <SettingsCard />
      <StartCard />
    </Screen>
  );
}

function SettingsCard() {
  const settings = useTrainingStore((s) => s.settings);
  const update = useTrainingStore((s) => s.update);
  const reset = useTrainingStore((s) => s.resetSettings);
  const refreshPlan = useTrainingStore((s) => s.refreshPlan);
  const running = useTrainingStore((s) => isRunActive(s.run.status));
  const loaded = useModelStore((s) => s.loaded);
  const classCount = useDatasetStore((s) => s.classes.length);
  const features = useEngineStore((s) => (s.connection.phase === 'ready' ? s.connection.info.features : null));

  // biome-ignore lint/correctness/useExhaustiveDependencies: the plan is asked again when the settings, the model or the classes change
  useEffect(() => {
    const timer = setTimeout(() => void refreshPlan(), PLAN_DELAY_MS);
    return () => clearTimeout(timer);
  }, [settings, loaded, classCount, refreshPlan]);

  const blockLora = settings.method === 'block-lora';
  return (
    <Card title="Settings">
      <fieldset className="settings" disabled={running}>
        <legend className="visually-hidden">Training settings</legend>
        <RadioGroup
          label="Method"
          value={settings.method}
          options={[
            { value: 'block-lora', label: 'Block-LoRA' },
            { value: 'lora', label: 'LoRA' },
          ]}
          onChange={(method) => update({ method, blocks: Math.max(RECIPE_ADAPTER.blocks, settings.blocks) })}
          help="Block-LoRA shares one down-projection between n blocks: fewer parameters, less compute."
        />
        <div className="field-row">
          <NumberField label="Rank r" integer min={1} value={settings.rank} onChange={(rank) => update({ rank })} />
          <NumberField
            label="Blocks n"
            integer
            min={1}
            value={settings.blocks}
            disabled={!blockLora}
            onChange={(blocks) => update({ blocks })}
            help={blockLora ? 'n must divide r.' : 'LoRA has one block.'}
          />
          <NumberField label="Learning rate" min={0} value={settings.lr} onChange={(lr) => update({ lr })} />
        </div>
        <CheckboxGroup
          label="Adapted matrices"
          value={settings.targets}
          options={TARGET_OPTIONS}
          onChange={(targets) => update({ targets })}
          help="In every layer of the chosen encoders."
        />
        <div className="field-row">
          <NumberField
            label="Iterations"
            integer
            min={1}
            value={settings.iterations}
            onChange={(iterations) => update({ iterations })}
            help={`The recipe: ${ITERATIONS_PER_SHOT} × shots.`}
          />
          <NumberField
            label="Batch size"
            integer
            min={1}
            value={settings.batchSize}
            onChange={(batchSize) => update({ batchSize })}
          />
        </div>
        <SplitFields disabled={running} />
        <details className="advanced">
          <summary>Advanced</summary>
          <div className="field-row">
            <NumberField label="Alpha" min={0} value={settings.alpha} onChange={(alpha) => update({ alpha })} />
            <SelectField
              label="Scaling"
              value={settings.scalingRule}
              options={[
                { value: 'alpha/sqrt(r)', label: 'alpha / √r (CLIP-LoRA)' },
                { value: 'alpha/r', label: 'alpha / r (LoRA paper, PEFT)' },
              ]}
              onChange={(scalingRule) => update({ scalingRule })}
            />
            <NumberField
              label="Adapter dropout"
              min={0}
              max={0.99}
              step={0.05}
              value={settings.dropout}
              onChange={(dropout) => update({ dropout })}
            />
          </div>
          <CheckboxGroup
            label="Encoders with adapters"
            value={settings.towers}
            options={TOWER_OPTIONS}
            onChange={(towers) => update({ towers })}
          />
          <div className="field-row">
            <MicroBatchField />
            <NumberField
              label="GPU memory for training (MiB)"
              min={0}
              value={(settings.memoryBudgetBytes ?? 0) / MIB}
              onChange={(mib) => update({ memoryBudgetBytes: mib * MIB })}
              help="What automatic passes are sized to. 0: twice the largest buffer the GPU allows (WebGPU does not tell its memory)."
            />
            <NumberField
              label="Final learning rate"
              min={0}
              value={settings.minLr}
              onChange={(minLr) => update({ minLr })}
              help="Cosine schedule down to this."
            />
            <NumberField
              label="Warm-up steps"
              integer
              min={0}
              value={settings.warmupSteps}
              onChange={(warmupSteps) => update({ warmupSteps })}
            />
            <NumberField
              label="Weight decay"
              min={0}
              value={settings.weightDecay}
              onChange={(weightDecay) => update({ weightDecay })}
            />
          </div>
          <div className="field-row">
            <SelectField
              label="Precision"
              value={settings.precision ?? RECIPE_PRECISION}
              options={PRECISION_SETTINGS.map((precision) => {
                // A precision that needs a feature this GPU lacks is shown, but cannot be chosen.
                const missing = features && missingFeature(precision, features);
                return {
                  value: precision,
                  label: `${precision}: ${PRECISION_HELP[precision]}${missing ? ` (unavailable: this GPU lacks ${missing})` : ''}`,
                  disabled: Boolean(missing),
                };
              })}
              onChange={(precision) => update({ precision })}
              help="How the frozen CLIP weights are held on the GPU and multiplied by. Adapters are f32 at every precision."
            />
          </div>
          <div className="field-row">
            <NumberField
              label="Held-out evaluation every (steps)"
              integer
              min={0}
              value={settings.evalEvery}
              onChange={(evalEvery) => update({ evalEvery })}
              help="0: before and after training only."
            />
            <NumberField
              label="Stop early after (evaluations)"
              integer
              min={0}
              value={settings.patience ?? 0}
              onChange={(patience) => update({ patience })}
              help="Held-out evaluations without a better accuracy; keeps the best adapter. 0: train every step."
            />
            <NumberField
              label="Checkpoint every (steps)"
              integer
              min={1}
              value={settings.checkpointEvery}
              onChange={(checkpointEvery) => update({ checkpointEvery })}
              help="A reload or a lost GPU resumes from the last one."
            />
            <label className="checkbox standalone">
              <input
                type="checkbox"
                checked={settings.augment}
                onChange={(event) => update({ augment: event.target.checked })}
              />
              Augment (random crops and flips)
            </label>
          </div>
          <button type="button" className="secondary" onClick={reset}>
            Reset to the recipe
          </button>
        </details>
      </fieldset>
      <PlanSummary />
    </Card>
  );
}

const MIB = 2 ** 20;
const AUTOMATIC = 'automatic';

/** Automatic (the largest pass that fits the GPU memory), or a divisor of the batch. */
function MicroBatchField() {
  const { batchSize, microBatchSize } = useTrainingStore((s) => s.settings);
  const update = useTrainingStore((s) => s.update);
  const sizes = Array.from({ length: batchSize }, (_, i) => i + 1).filter(
    (m) => batchSize % m === 0 || m === microBatchSize,
  );
  const options = [
    { value: AUTOMATIC, label: 'Automatic' },
    ...sizes.map((m) => ({ value: String(m), label: String(m) })),
  ];
  return (
    <SelectField
      label="Images per pass (micro-batch)"
      value={microBatchSize === null ? AUTOMATIC : String(microBatchSize)}
      options={options}
      onChange={(value) => update({ microBatchSize: value === AUTOMATIC ? null : Number(value) })}
      help="Smaller passes need less GPU memory; the batch is accumulated. Automatic: the largest that fits."
    />
  );
}

function PlanSummary() {
  const plan = useTrainingStore((s) => s.plan);
  const settings = useTrainingStore((s) => s.settings);
  switch (plan.status) {
    case 'none':
      return <p className="muted">{plan.reason}</p>;
    case 'planning':
      return <p className="muted">Working out what this costs…</p>;
    case 'invalid':
    case 'does-not-fit':
      return (
        <p className="invalid" role="alert" data-testid="settings-problem">
          {plan.message}
        </p>
      );
    case 'ready': {
      const { trainableParameters, peakBytes, breakdown, microBatchSize, textChunk, budgetBytes, precision } =
        plan.plan;
      return (
        <div className="plan" data-testid="training-plan">
          <dl className="facts">
            <div>
              <dt>Trainable parameters</dt>
              <dd data-testid="trainable-parameters">{formatCount(trainableParameters)}</dd>
            </div>
            <div>
              <dt>Expected GPU memory</dt>
              <dd>
                <span data-testid="expected-memory" title={`${peakBytes.toLocaleString('en-US')} bytes`}>
                  {formatBytes(peakBytes)}
                </span>{' '}
                <span className="muted" data-testid="memory-budget">
                  of {formatBytes(budgetBytes)}
                </span>
              </dd>
            </div>
            <div>
              <dt>Precision</dt>
              <dd data-testid="precision">
                {precision.precision} <span className="muted">({precision.reason})</span>
              </dd>
            </div>
            <div>
              <dt>Passes</dt>
              <dd data-testid="passes">
                {microBatchSize} {microBatchSize === 1 ? 'image' : 'images'} and {textChunk}{' '}
                {textChunk === 1 ? 'prompt' : 'prompts'}
                {settings.microBatchSize === null && <span className="muted"> (automatic)</span>}
              </dd>
            </div>
          </dl>
          <details>
            <summary>Where the memory goes</summary>
            <ul className="breakdown">
              {Object.entries(breakdown)
                .sort(([, a], [, b]) => b - a)
                .map(([part, bytes]) => (
                  <li key={part}>
                    {part}: {formatBytes(bytes)}
                  </li>
                ))}
            </ul>
          </details>
        </div>
      );
    }
  }
}

/**
 * A run's progress (steps, rate, time left, the charts) is drawn at most this often; anything else at
 * once. A small model steps ten times a second, and on a software adapter the GPU is the CPU that draws
 * the page: redrawing the card at every step made the steps about 25% slower (SwiftShader, measured
 * with the card shown and with another screen open during the same run).
 */
const PROGRESS_REDRAW_MS = 250;
/** The parts of a run that only its steps and evaluations change. */
const PROGRESS_KEYS = new Set<keyof RunState>(['history', 'stepsPerSecond', 'secondsLeft']);

function onlyProgressChanged(run: RunState, previous: RunState): boolean {
  return (Object.keys(run) as (keyof RunState)[]).every((key) => PROGRESS_KEYS.has(key) || run[key] === previous[key]);
}

/** The run as its card draws it: a step's progress at most every PROGRESS_REDRAW_MS, the latest one last. */
function useDrawnRun(): RunState {
  const [drawn, setDrawn] = useState(() => useTrainingStore.getState().run);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    let drawnAt = 0;
    const draw = () => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      drawnAt = performance.now();
      setDrawn(useTrainingStore.getState().run);
    };
    draw();
    const unsubscribe = useTrainingStore.subscribe(({ run }, { run: previous }) => {
      if (run === previous) return;
      if (!onlyProgressChanged(run, previous)) draw();
      else if (timer === null) timer = setTimeout(draw, Math.max(0, drawnAt + PROGRESS_REDRAW_MS - performance.now()));
    });
    return () => {
      unsubscribe();
      if (timer !== null) clearTimeout(timer);
    };
  }, []);
  return drawn;
}

function RunCard() {
  const run = useDrawnRun();
  const chooseAdapter = usePredictionStore((s) => s.chooseAdapter);
  const card = useRef<HTMLElement>(null);
  // Start is below the settings: bring a new run's card into view.
  useEffect(() => {
    if (run.runId) card.current?.scrollIntoView({ block: 'start' });
  }, [run.runId]);
  if (run.status === 'idle') return null;
  return (
    <Card ref={card} title="Training run" badge={<RunBadge run={run} />} busy={run.status === 'running'}>
      <RunStatus run={run} />
      <RunControls run={run} />
      {run.phase === 'loading-weights' && run.weightsLoaded && (
        <ProgressBar label="Weights" value={run.weightsLoaded.loadedBytes} max={run.weightsLoaded.totalBytes} />
      )}
      {run.iterations > 0 && <RunProgress run={run} />}
      <RunCharts run={run} />
      {run.status === 'finished' && run.adapter && (
        <Note>
          Saved to the adapter library as <strong data-testid="trained-adapter-name">{run.adapter.name}</strong>. Next:{' '}
          <a href={sectionHref('evaluate')}>see how it does</a>,{' '}
          <a href={sectionHref('try')} onClick={() => void chooseAdapter(run.adapter!.id)}>
            try it on an image
          </a>{' '}
          or <a href={sectionHref('adapters')}>download it</a>.
        </Note>
      )}
    </Card>
  );
}

function RunBadge({ run }: { run: RunState }) {
  if (run.status === 'finished') return <Badge tone="good">Finished</Badge>;
  if (run.status === 'failed') return <Badge tone="bad">Failed</Badge>;
  if (run.status === 'cancelled') return <Badge tone="bad">Cancelled</Badge>;
  if (run.status === 'interrupted') return <Badge tone="bad">Interrupted</Badge>;
  if (run.phase === 'paused') return <Badge tone="pending">Paused</Badge>;
  return <Badge tone="pending">Running</Badge>;
}

const PHASE_TEXT = {
  'loading-weights': 'Loading the weights in the precision of this run…',
  preparing: 'Decoding the images…',
  baseline: 'Measuring the zero-shot baseline on the held-out images…',
  training: 'Training…',
  paused: 'Paused. The run resumes from this step.',
  evaluating: 'Evaluating the adapter on the held-out images…',
} as const;

function RunStatus({ run }: { run: RunState }) {
  let text: string;
  if (run.status === 'failed') text = run.message ?? 'The run failed.';
  else if (run.status === 'cancelled') text = 'Cancelled: nothing was saved.';
  else if (run.status === 'interrupted')
    text = `Interrupted. Resume it from its checkpoint (step ${run.savedStep ?? 0}) with the button above.`;
  else if (run.status === 'finished') text = finishedText(run);
  else if (run.pending === 'pause') text = 'Pausing after this step…';
  else if (run.pending === 'cancel') text = 'Cancelling after this step…';
  else text = run.phase ? PHASE_TEXT[run.phase] : 'Starting…';
  return (
    <>
      <p role="status" className="status-line" data-testid="run-status">
        {text}
      </p>
      {run.status !== 'failed' && run.message && <p className="invalid">{run.message}</p>}
    </>
  );
}

/** "Finished.", or with early stopping where the run ended and whose adapter it kept (the driver's metrics). */
function finishedText(run: RunState): string {
  const { lastStep, keptStep } = run.adapter?.meta.metrics ?? {};
  if (typeof lastStep !== 'number' || typeof keptStep !== 'number') return 'Finished.';
  const ended = lastStep < run.iterations ? `Stopped early at step ${lastStep} of ${run.iterations}` : 'Finished';
  return `${ended}: kept the adapter of step ${keptStep}, the best held-out accuracy.`;
}

function RunControls({ run }: { run: RunState }) {
  const pause = useTrainingStore((s) => s.pause);
  const resume = useTrainingStore((s) => s.resume);
  const cancel = useTrainingStore((s) => s.cancel);
  if (run.status !== 'running') return null;
  const paused = run.phase === 'paused';
  return (
    <div className="actions">
      {paused ? (
        <button type="button" onClick={() => void resume()}>
          Resume
        </button>
      ) : (
        <button type="button" onClick={() => void pause()} disabled={run.pending !== null || run.phase !== 'training'}>
          Pause
        </button>
      )}
      <button type="button" className="danger" onClick={() => void cancel()} disabled={run.pending === 'cancel'}>
        Cancel
      </button>
    </div>
  );
}

function RunProgress({ run }: { run: RunState }) {
  const step = run.history.steps.at(-1)?.step ?? run.savedStep ?? 0;
  const training = run.status === 'running' && run.phase === 'training';
  const parts = [`step ${step} of ${run.iterations}`];
  if (run.stepsPerSecond !== null) parts.push(`${run.stepsPerSecond.toFixed(2)} steps/s`);
  if (run.secondsLeft !== null && training) parts.push(`${formatTimeLeft(run.secondsLeft)} left`);
  if (run.savedStep !== null && run.status === 'running') parts.push(`checkpoint at step ${run.savedStep}`);
  return <ProgressBar label="Progress" value={step} max={run.iterations} detail={parts.join(' · ')} />;
}

/** Exponential moving average: a readable trend through noisy per-batch values. */
function smooth(points: { x: number; y: number }[], weight = 0.8): { x: number; y: number }[] {
  let average: number | null = null;
  return points.map(({ x, y }) => {
    average = average === null ? y : weight * average + (1 - weight) * y;
    return { x, y: average };
  });
}

function RunCharts({ run }: { run: RunState }) {
  const { steps, evaluations } = run.history;
  const loss = steps.map((s) => ({ x: s.step, y: s.loss }));
  const batchAccuracy = steps.map((s) => ({ x: s.step, y: s.accuracy }));
  const heldOut = evaluations.map((e) => ({ x: e.step, y: e.accuracy }));
  const lossSeries: ChartSeries[] = [
    { name: 'batch loss', points: loss, tone: 'faint' },
    { name: 'trend', points: smooth(loss), tone: 'accent' },
  ];
  const accuracySeries: ChartSeries[] = [
    { name: 'training batches (trend)', points: smooth(batchAccuracy), tone: 'accent' },
    { name: 'held-out images', points: heldOut, tone: 'good', dots: true },
  ];
  const lastLoss = steps.at(-1)?.loss;
  const lastHeldOut = evaluations.at(-1);
  return (
    <div className="charts">
      <LineChart
        title="Loss"
        series={lossSeries}
        xMax={run.iterations}
        formatY={(v) => v.toFixed(2)}
        summary={lastLoss === undefined ? 'no steps yet' : `${steps.length} steps, latest ${lastLoss.toFixed(3)}`}
      />
      <LineChart
        title="Accuracy"
        series={accuracySeries}
        xMax={run.iterations}
        yRange={[0, 1]}
        formatY={(v) => `${Math.round(100 * v)}%`}
        summary={
          lastHeldOut
            ? `held out ${formatPercent(lastHeldOut.accuracy)} at step ${lastHeldOut.step}`
            : 'no evaluation yet'
        }
      />
    </div>
  );
}
