// The GPU screen: which WebGPU device the engine worker opened and what it allows, or why there is
// none and what to do; and a self-test that runs a real kernel on that device.

import { Screen } from '../components/Screen';
import { Problem } from '../components/Notice';
import { SoftwareAdapterNote } from '../components/SoftwareAdapterNote';
import { useDatasetStore } from '../stores/dataset';
import { useModelStore } from '../stores/model';
import { sectionHref } from '../navigation';
import { useEngineStore, type Connection, type SelfTest } from '../stores/engine';
import { formatBytes, formatDuration } from '../format';
import type { DeviceLimits, EngineInfo, MatmulChoice, SelfTestResult } from '../../worker/protocol';

export function DeviceScreen() {
  return (
    <Screen
      title="GPU"
      intro={
        <>
          octoclip fine-tunes CLIP on this computer&rsquo;s graphics card through WebGPU. A background worker holds the
          GPU, so the page stays responsive while it computes.
        </>
      }
    >
      <DeviceCard />
      <SelfTestCard />
    </Screen>
  );
}

// ---- device ---------------------------------------------------------------------------------------

const BADGES: Record<Connection['phase'], { label: string; tone: 'pending' | 'good' | 'bad' }> = {
  connecting: { label: 'Connecting', tone: 'pending' },
  ready: { label: 'Ready', tone: 'good' },
  unavailable: { label: 'Not available', tone: 'bad' },
  lost: { label: 'Device lost', tone: 'bad' },
  failed: { label: 'Engine failed', tone: 'bad' },
};

function summary(connection: Connection): string {
  switch (connection.phase) {
    case 'connecting':
      return 'Opening the GPU in the engine worker (on a GPU it has not seen, it first times the matrix products)…';
    case 'ready':
      return 'WebGPU is available.';
    case 'unavailable':
      return 'WebGPU is not available.';
    case 'lost':
      return 'The GPU device was lost.';
    case 'failed':
      return 'The engine could not start.';
  }
}

function DeviceCard() {
  const connection = useEngineStore((s) => s.connection);
  const connect = useEngineStore((s) => s.connect);
  const badge = BADGES[connection.phase];
  return (
    <article className="card" aria-labelledby="device-title">
      <header className="card-header">
        <h2 id="device-title">WebGPU device</h2>
        <span className={`badge badge-${badge.tone}`}>{badge.label}</span>
      </header>
      <p role="status" className="status-line">
        {summary(connection)}
      </p>
      {connection.phase === 'ready' && (
        <>
          {connection.info.software && <SoftwareAdapterNote adapterName={connection.info.adapterName} />}
          <NextStep />
          <DeviceDetails info={connection.info} />
        </>
      )}
      {connection.phase === 'unavailable' && (
        <Problem title="What to do" action="Try again" onAction={() => void connect()}>
          <p>{connection.message}</p>
        </Problem>
      )}
      {connection.phase === 'lost' && (
        <Problem title="What happened" action="Reconnect" onAction={() => void connect()}>
          <p>
            {connection.info ? connection.info.adapterName : 'The device'} stopped responding. This happens when the
            graphics driver resets or the browser restarts its GPU process; anything the engine held on the GPU is gone.
            Reconnect to open a new device.
          </p>
          <p className="detail">
            The browser&rsquo;s reason: <q>{connection.message}</q>
          </p>
        </Problem>
      )}
      {connection.phase === 'failed' && (
        <Problem title="What happened" action="Try again" onAction={() => void connect()}>
          <p>{connection.message}</p>
        </Problem>
      )}
    </article>
  );
}

/** Where a newcomer goes from here: the first thing missing for a run. */
function NextStep() {
  const model = useModelStore((s) => s.loaded);
  const classes = useDatasetStore((s) => s.classes.length);
  const [text, link, href] = !model
    ? ['Next: load a CLIP model.', 'Open the Model screen', sectionHref('model')]
    : classes < 2
      ? [
          `Next: add images of two or more classes (model ${model.id} is loaded).`,
          'Open the Dataset screen',
          '#/dataset',
        ]
      : ['Ready to train.', 'Open the Train screen', sectionHref('train')];
  return (
    <p className="next-step" data-testid="next-step">
      {text} <a href={href}>{link}</a>
    </p>
  );
}

const LIMITS: { key: keyof DeviceLimits; label: string; format: (value: number) => string }[] = [
  { key: 'maxBufferSize', label: 'Largest buffer', format: formatBytes },
  { key: 'maxStorageBufferBindingSize', label: 'Largest tensor a kernel binds', format: formatBytes },
  { key: 'maxComputeWorkgroupStorageSize', label: 'Workgroup shared memory', format: formatBytes },
  { key: 'maxComputeInvocationsPerWorkgroup', label: 'Threads per workgroup', format: String },
];

function DeviceDetails({ info }: { info: EngineInfo }) {
  return (
    <>
      <p className="adapter">
        <span className="adapter-label">Adapter</span>
        <strong data-testid="adapter-name">{info.adapterName}</strong>
      </p>
      <dl className="limits" aria-label="Device limits">
        {LIMITS.map(({ key, label, format }) => (
          <div key={key} className="limit">
            <dt>
              {label} <code>{key}</code>
            </dt>
            <dd>{format(info.limits[key])}</dd>
          </div>
        ))}
      </dl>
      <p className="features">
        <span>Enabled features:</span>{' '}
        {info.features.length ? (
          info.features.map((feature) => (
            <code key={feature} className="chip">
              {feature}
            </code>
          ))
        ) : (
          <span>none beyond core WebGPU</span>
        )}
      </p>
      <p className="features" data-testid="matmul-config">
        <span>Matrix products:</span> <code className="chip">{info.matmul.config}</code> {matmulSource(info.matmul)}
        {info.matmul.source !== 'table' && info.matmul.tuning.f16 && (
          <>
            ; in f16 arithmetic <code className="chip">{info.matmul.tuning.f16.config}</code>, which took{' '}
            {Math.round(100 * info.matmul.tuning.f16.timeRatio)}% of f32&rsquo;s time
          </>
        )}
      </p>
    </>
  );
}

function matmulSource(choice: MatmulChoice): string {
  switch (choice.source) {
    case 'tuned':
      return `the fastest on this GPU, measured just now (${choice.tuning.milliseconds} ms)`;
    case 'cached':
      return 'the fastest on this GPU, measured on an earlier visit';
    case 'table':
      return `the default for this kind of GPU: measuring failed (${choice.reason})`;
  }
}

// ---- self-test ------------------------------------------------------------------------------------

function SelfTestCard() {
  const connection = useEngineStore((s) => s.connection);
  const selfTest = useEngineStore((s) => s.selfTest);
  const runSelfTest = useEngineStore((s) => s.runSelfTest);
  const canRun = connection.phase === 'ready' && selfTest.phase !== 'running';
  return (
    <article className="card" aria-labelledby="self-test-title" aria-busy={selfTest.phase === 'running'}>
      <header className="card-header">
        <h2 id="self-test-title">Compute check</h2>
        <SelfTestBadge selfTest={selfTest} />
      </header>
      <p>
        Adds two vectors with the engine&rsquo;s WGSL <code>add</code> kernel on the GPU and reads the sum back: proof
        that compute works, not only that a device opened.
      </p>
      <p role="status" className="status-line" data-testid="self-test-status">
        {selfTestSummary(connection, selfTest)}
      </p>
      {selfTest.phase === 'done' && <SelfTestValues result={selfTest.result} />}
      <button type="button" onClick={() => void runSelfTest()} disabled={!canRun}>
        {selfTest.phase === 'done' || selfTest.phase === 'failed' ? 'Run again' : 'Run'}
      </button>
    </article>
  );
}

function SelfTestBadge({ selfTest }: { selfTest: SelfTest }) {
  if (selfTest.phase === 'running') return <span className="badge badge-pending">Running</span>;
  if (selfTest.phase === 'failed' || (selfTest.phase === 'done' && !selfTest.result.passed)) {
    return <span className="badge badge-bad">Failed</span>;
  }
  if (selfTest.phase === 'done') return <span className="badge badge-good">Passed</span>;
  return null;
}

function selfTestSummary(connection: Connection, selfTest: SelfTest): string {
  switch (selfTest.phase) {
    case 'idle':
      return connection.phase === 'ready' ? 'Not run yet.' : 'Runs once the GPU is ready.';
    case 'running':
      return 'Running on the GPU…';
    case 'failed':
      return `The kernel failed: ${selfTest.message}`;
    case 'done': {
      const { result } = selfTest;
      const values = `${result.sum.length} values in ${formatDuration(result.milliseconds)}`;
      return result.passed
        ? `Passed: the GPU’s sums match the CPU’s exactly (${values}).`
        : `Failed: the GPU’s sums are off by up to ${result.maxAbsError} (${values}).`;
    }
  }
}

function SelfTestValues({ result }: { result: SelfTestResult }) {
  const rows: [string, number[]][] = [
    ['a', result.a],
    ['b', result.b],
    ['a + b (GPU)', result.sum],
  ];
  return (
    <div className="table-scroll">
      <table className="values">
        <caption>Values sent to and read back from the GPU</caption>
        <tbody>
          {rows.map(([name, values]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              {values.map((value, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: the cells of a fixed row, never reordered
                <td key={i}>{value}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
