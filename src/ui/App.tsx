// The studio shell: brand header, section navigation, a banner for a training run that did not finish,
// and the current section's screen. On start it opens the engine and restores what the browser kept:
// the dataset, the adapters, the last model, an interrupted run.

import { useEffect, type ComponentType } from 'react';
import { UndoBar } from './components/UndoBar';
import { formatDateTime, formatTimeLeft } from './format';
import { SECTIONS, sectionHref, useCurrentSection, type Section, type SectionId } from './navigation';
import { DatasetScreen } from './screens/DatasetScreen';
import { DeviceScreen } from './screens/DeviceScreen';
import { EvaluateScreen } from './screens/EvaluateScreen';
import { LibraryScreen } from './screens/LibraryScreen';
import { ModelScreen } from './screens/ModelScreen';
import { TrainScreen } from './screens/TrainScreen';
import { TryScreen } from './screens/TryScreen';
import { WorkspaceScreen } from './screens/WorkspaceScreen';
import { useAdaptersStore } from './stores/adapters';
import { useDatasetStore } from './stores/dataset';
import { useEngineStore } from './stores/engine';
import { useModelStore } from './stores/model';
import { useTrainingStore } from './stores/training';

const SCREENS: Record<SectionId, ComponentType> = {
  gpu: DeviceScreen,
  model: ModelScreen,
  dataset: DatasetScreen,
  train: TrainScreen,
  evaluate: EvaluateScreen,
  try: TryScreen,
  adapters: LibraryScreen,
  workspace: WorkspaceScreen,
};

export function App() {
  const connect = useEngineStore((s) => s.connect);
  const current = useCurrentSection();
  const Screen = SCREENS[current.id];

  useEffect(() => {
    // The engine starts with the page: every screen needs the GPU.
    void connect();
    void useDatasetStore.getState().load();
    void useAdaptersStore.getState().load();
    void useTrainingStore.getState().findInterrupted();
    void useModelStore.getState().restore();
  }, [connect]);

  useEffect(() => {
    document.title = `${current.title} · octoclip`;
  }, [current]);

  return (
    <div className="app">
      <a className="skip-link" href="#content">
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href={sectionHref(SECTIONS[0].id)}>
          <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width="28" height="28" />
          <span>octoclip</span>
        </a>
        <p className="tagline">Fine-tune CLIP with Block-LoRA on your own GPU, in the browser</p>
      </header>
      <nav className="sidebar" aria-label="Studio sections">
        <ul>
          {SECTIONS.map((section) => (
            <li key={section.id}>
              <NavItem section={section} current={section === current} />
            </li>
          ))}
        </ul>
      </nav>
      <main id="content" className="content" tabIndex={-1}>
        <ElsewhereRunBanner />
        <InterruptedRunBanner />
        <Screen />
      </main>
      <UndoBar />
    </div>
  );
}

function NavItem({ section, current }: { section: Section; current: boolean }) {
  return (
    <a
      className="nav-item"
      href={sectionHref(section.id)}
      aria-current={current ? 'page' : undefined}
      title={section.summary}
    >
      {section.title}
    </a>
  );
}

/** Another tab of this browser profile trains: its progress, on every screen (one run at a time). */
function ElsewhereRunBanner() {
  const elsewhere = useTrainingStore((s) => s.elsewhere);
  if (!elsewhere) return null;
  const { step, iterations, stepsPerSecond, secondsLeft } = elsewhere;
  const parts =
    step !== null && iterations !== null ? [`step ${step} of ${iterations}`] : ['waiting for its next step'];
  if (stepsPerSecond !== null) parts.push(`${stepsPerSecond.toFixed(2)} steps/s`);
  if (secondsLeft !== null) parts.push(`${formatTimeLeft(secondsLeft)} left`);
  return (
    <section className="banner" aria-label="Training in another tab">
      <p>
        <strong>Training in another tab</strong> <span data-testid="elsewhere-progress">{parts.join(' · ')}</span>
      </p>
      {step !== null && iterations !== null && (
        <progress max={iterations} value={step} aria-label="Progress of the run in another tab" />
      )}
      <p className="detail">
        One run at a time in this browser: that tab shows the run and its controls. Its adapter appears in the library
        here when it finishes.
      </p>
    </section>
  );
}

/** Offers to resume a run that stopped before its end (a reload, a closed tab, a lost GPU), on every screen. */
function InterruptedRunBanner() {
  const interrupted = useTrainingStore((s) => s.interrupted);
  const resume = useTrainingStore((s) => s.resumeInterrupted);
  const discard = useTrainingStore((s) => s.discardInterrupted);
  if (!interrupted) return null;
  return (
    <section className="banner" aria-label="Interrupted training run">
      <p>
        <strong data-testid="interrupted-run">
          A run was interrupted at step {interrupted.step} of {interrupted.iterations}
        </strong>{' '}
        <span className="muted">
          ({interrupted.modelId}, saved {formatDateTime(interrupted.savedAt)})
        </span>
      </p>
      {interrupted.reason && <p className="detail">{interrupted.reason}</p>}
      <div className="actions">
        <button
          type="button"
          onClick={() => {
            window.location.hash = sectionHref('train');
            void resume();
          }}
        >
          Resume
        </button>
        <button type="button" className="secondary" onClick={() => void discard()}>
          Discard
        </button>
      </div>
    </section>
  );
}
