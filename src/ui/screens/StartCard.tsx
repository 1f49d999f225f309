// Next to Start on the Train screen: what will train, every problem that keeps the run from starting
// (with where to fix it), how long it will take on this device, and the Start button itself.

import { useEffect } from 'react';
import { budgetIterations, recipeIterations, TIME_BUDGET_MINUTES } from '../../common/recipe';
import { runMilliseconds, runWork } from '../../common/run-time';
import { shotsOf } from '../../common/split';
import { Card } from '../components/Card';
import { SoftwareAdapterNote } from '../components/SoftwareAdapterNote';
import { formatTimeLeft } from '../format';
import { trainingProblems, type ReadinessProblem } from '../readiness';
import { useDatasetSplit } from '../split';
import { useDatasetStore } from '../stores/dataset';
import { useEngineStore } from '../stores/engine';
import { estimateKey, useEstimateStore } from '../stores/estimate';
import { useFieldProblems } from '../stores/field-problems';
import { useModelStore } from '../stores/model';
import { isRunActive, splitSettings, useTrainingStore } from '../stores/training';

/** How long settings rest before calibration steps are timed for them. */
const CALIBRATION_DELAY_MS = 600;

export function StartCard() {
  const problems = useTrainingProblems();
  const fieldProblems = Object.entries(useFieldProblems((s) => s.problems));
  return (
    <Card title="What will train" className="start-card">
      <ul className="checklist" aria-label="What will train">
        <ModelLine />
        <DataLine />
        {fieldProblems.map(([id, { label, text }]) => (
          <li key={id} className="missing" data-check="field">
            <strong>{label}</strong>: {text} Start waits until it is.
          </li>
        ))}
        {problems.map((problem) => (
          <ProblemLine key={problem.check} problem={problem} />
        ))}
      </ul>
      <TimeEstimate />
      <StartButton ready={problems.length === 0 && fieldProblems.length === 0} />
    </Card>
  );
}

function useTrainingProblems(): ReadinessProblem[] {
  const model = useModelStore((s) => s.loaded);
  const classes = useDatasetStore((s) => s.classes);
  const images = useDatasetStore((s) => s.images);
  const settings = useTrainingStore((s) => s.settings);
  const plan = useTrainingStore((s) => s.plan);
  const elsewhere = useTrainingStore((s) => s.elsewhere);
  const split = useDatasetSplit(settings, settings.seed);
  return trainingProblems({ model, classes, images, split, plan, elsewhere });
}

function ModelLine() {
  const loaded = useModelStore((s) => s.loaded);
  const activity = useModelStore((s) => s.activity);
  const lostModelId = useModelStore((s) => s.lostModelId);
  if (loaded) {
    return (
      <li className="ok">
        Model: <strong>{loaded.id}</strong>
      </li>
    );
  }
  if (activity.kind === 'loading') return <li className="pending">Model: loading {activity.id}…</li>;
  if (lostModelId)
    return (
      <li className="pending">
        Model: {lostModelId} was on the GPU that was lost; it loads again when the GPU reconnects
      </li>
    );
  return null;
}

function DataLine() {
  const classes = useDatasetStore((s) => s.classes);
  const settings = useTrainingStore((s) => s.settings);
  const split = useDatasetSplit(settings, settings.seed);
  const rule =
    settings.holdout === undefined
      ? `${settings.shots} shots per class`
      : `${Math.round(100 * (1 - settings.holdout))}% of each class trains`;
  return (
    <li className={classes.length >= 2 ? 'ok' : 'missing'} data-testid="train-data-summary">
      Data: {classes.length} {classes.length === 1 ? 'class' : 'classes'}, {split.support.imageIds.length} training and{' '}
      {split.heldOut.imageIds.length} held-out images ({rule})
    </li>
  );
}

function ProblemLine({ problem }: { problem: ReadinessProblem }) {
  return (
    <li
      className={problem.check === 'planning' || problem.check === 'elsewhere' ? 'pending' : 'missing'}
      data-check={problem.check}
    >
      {problem.text}
      {problem.fix && (
        <>
          {' '}
          <a href={problem.fix.href}>{problem.fix.label}</a>.
        </>
      )}
    </li>
  );
}

/** The time a run with these settings takes here, from timed steps; and a warning on a software adapter. */
function TimeEstimate() {
  const connection = useEngineStore((s) => s.connection);
  const model = useModelStore((s) => s.loaded);
  const settings = useTrainingStore((s) => s.settings);
  const planReady = useTrainingStore((s) => s.plan.status === 'ready');
  const running = useTrainingStore((s) => isRunActive(s.run.status));
  const classes = useDatasetStore((s) => s.classes.length);
  const split = useDatasetSplit(settings, settings.seed);
  const trainingImages = split.support.imageIds.length;
  const recipeSteps = recipeIterations(
    settings.holdout === undefined ? settings.shots : shotsOf(trainingImages, classes),
  );
  const { stepTimes, measuring, problem, calibrate } = useEstimateStore();
  const update = useTrainingStore((s) => s.update);
  const info = connection.phase === 'ready' ? connection.info : null;
  const { adapter, training } = splitSettings(settings);
  const key =
    info && model && trainingImages > 0
      ? estimateKey(info.adapterName, model.fingerprint, adapter, training, classes, trainingImages)
      : null;

  // biome-ignore lint/correctness/useExhaustiveDependencies: key stands for the settings it was made from
  useEffect(() => {
    if (!key || !planReady || running) return;
    const timer = setTimeout(
      () => void calibrate(key, { adapter, training, classes, trainingImages }),
      CALIBRATION_DELAY_MS,
    );
    return () => clearTimeout(timer);
    // The key holds everything the timing depends on; once a calibration ends, the settings of now get theirs.
  }, [key, planReady, running, measuring]);

  const stepTime = key ? stepTimes[key] : undefined;
  const shape = {
    iterations: settings.iterations,
    evalEvery: settings.evalEvery,
    checkpointEvery: settings.checkpointEvery,
    heldOutImages: split.heldOut.imageIds.length,
    trainingImages,
  };
  const evaluations = runWork(shape).heldOutEvaluations;
  return (
    <div className="time-estimate">
      {info?.software && <SoftwareAdapterNote adapterName={info.adapterName} />}
      {stepTime ? (
        <p data-testid="time-estimate" data-milliseconds={Math.round(runMilliseconds(stepTime, shape))}>
          About <strong>{formatRunTime(runMilliseconds(stepTime, shape) / 1000)}</strong> for{' '}
          {settings.iterations.toLocaleString('en-US')} steps ({(stepTime.millisecondsPerStep / 1000).toFixed(2)} s per
          step on {info?.adapterName}, {stepTime.source === 'run' ? 'as measured by the last run' : 'from timed steps'}
          {evaluations > 0 && `, and ${evaluations} held-out ${evaluations === 1 ? 'evaluation' : 'evaluations'}`}
          ).
        </p>
      ) : null}
      {stepTime && (
        <RunLength
          iterations={settings.iterations}
          choices={[
            { label: `The recipe: ${recipeSteps.toLocaleString('en-US')} steps`, iterations: recipeSteps },
            ...TIME_BUDGET_MINUTES.map((minutes) => ({
              label: `About ${minutes} minutes`,
              iterations: budgetIterations(minutes * 60_000, stepTime.millisecondsPerStep),
            })),
          ]}
          disabled={running}
          onChoose={(iterations) => update({ iterations })}
        />
      )}
      {stepTime ? null : measuring === key && key ? (
        <p className="muted" role="status">
          Timing a few training steps on this device…
        </p>
      ) : problem?.key === key ? (
        <p className="invalid">{problem.message}</p>
      ) : null}
    </div>
  );
}

/** The run's length: the paper's 500 x shots, or as many steps as fit a time budget on this device (same schedule shape). */
function RunLength(props: {
  iterations: number;
  choices: { label: string; iterations: number }[];
  disabled: boolean;
  onChoose(iterations: number): void;
}) {
  return (
    <fieldset className="run-length" aria-label="Run length">
      <span className="muted">Run length on this GPU:</span>{' '}
      {props.choices.map(({ label, iterations }) => (
        <button
          key={label}
          type="button"
          className="secondary"
          aria-pressed={props.iterations === iterations}
          disabled={props.disabled}
          onClick={() => props.onChoose(iterations)}
        >
          {label}
        </button>
      ))}
    </fieldset>
  );
}

/** "under a second" rather than "0 s" for a tiny model's short run. */
function formatRunTime(seconds: number): string {
  return seconds < 1 ? 'under a second' : formatTimeLeft(seconds);
}

function StartButton({ ready }: { ready: boolean }) {
  const start = useTrainingStore((s) => s.start);
  const busy = useTrainingStore((s) => isRunActive(s.run.status));
  const interrupted = useTrainingStore((s) => s.interrupted);
  return (
    <div className="actions">
      <button type="button" onClick={() => void start()} disabled={busy || !ready}>
        Start training
      </button>
      {interrupted && (
        <span className="muted">Starting a new run leaves the interrupted one to resume or discard.</span>
      )}
    </div>
  );
}
