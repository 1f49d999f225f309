// The Try it screen: drop, paste, pick or photograph an image, or classify the camera live, and compare
// the class probabilities of the base model with those of an adapter.

import { useEffect, useRef, useState } from 'react';
import { captureFrame, useCamera } from '../camera';
import { Screen } from '../components/Screen';
import { ClassBarTable } from '../components/Bar';
import { Card } from '../components/Card';
import { DropZone, FilePicker } from '../components/DropZone';
import { SelectField } from '../components/fields';
import { Problem } from '../components/Notice';
import { useAdaptersStore } from '../stores/adapters';
import { usePredictionStore } from '../stores/prediction';
import { isRunActive, useTrainingStore } from '../stores/training';
import type { PredictResult } from '../../worker/protocol';
import { MANY_CLASSES } from '../scale';

/** Class indices, most probable first. */
function byProbability(probabilities: readonly number[]): number[] {
  return probabilities.map((_, c) => c).sort((a, b) => probabilities[b] - probabilities[a]);
}

const NO_ADAPTER = '';

/**
 * Camera frames classified per second at most while live; fewer while a run trains on the same GPU.
 * One frame is in flight at a time, so frames never queue up behind a training step.
 */
const LIVE_FRAMES_PER_SECOND = 4;
const LIVE_FRAMES_PER_SECOND_WHILE_TRAINING = 1;

/** The choices of how many classes the table lists ('all': every class). */
const TOP_K_CHOICES = ['1', '3', '5', '10', 'all'] as const;

export function TryScreen() {
  const setImage = usePredictionStore((s) => s.setImage);

  // A pasted image (from a screenshot or a copied picture) is tried like a dropped one.
  useEffect(() => {
    const onPaste = (event: ClipboardEvent) => {
      const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
      if (file) void setImage(file);
    };
    window.addEventListener('paste', onPaste);
    return () => window.removeEventListener('paste', onPaste);
  }, [setImage]);

  return (
    <Screen
      title="Try it"
      intro="Classify a new image with and without an adapter. Paste an image anywhere on this page, drop one, pick one or use the camera."
    >
      <ImageCard />
      <ResultCard />
    </Screen>
  );
}

function ImageCard() {
  const { image, setImage, adapterId, chooseAdapter } = usePredictionStore();
  const adapters = useAdaptersStore((s) => s.adapters);
  return (
    <Card title="Image">
      <SelectField
        label="Adapter"
        value={adapterId ?? NO_ADAPTER}
        options={[
          { value: NO_ADAPTER, label: 'None: zero-shot on the dataset’s classes' },
          ...adapters.map((a) => ({ value: a.id, label: a.name })),
        ]}
        onChange={(id) => void chooseAdapter(id === NO_ADAPTER ? null : id)}
      />
      <div className="try-input">
        <DropZone
          label="Drop an image to classify"
          onDrop={(dataTransfer) => {
            const file = [...dataTransfer.files].find((f) => f.type.startsWith('image/')) ?? dataTransfer.files[0];
            if (file) void setImage(file);
          }}
        >
          {image ? (
            <img
              className="try-image"
              src={image.url}
              // biome-ignore lint/a11y/noRedundantAlt: the name the page and its tests know the preview by
              alt="The image being classified"
            />
          ) : (
            <p>Drop an image here, paste one, or</p>
          )}
          <FilePicker
            label="Choose an image"
            accept="image/*"
            secondary={image !== null}
            onFiles={(files) => void setImage(files[0])}
          />
        </DropZone>
        <Camera onCapture={(blob) => void setImage(blob)} onLiveFrame={(blob) => setImage(blob, { live: true })} />
      </div>
    </Card>
  );
}

function Camera({ onCapture, onLiveFrame }: { onCapture(blob: Blob): void; onLiveFrame(blob: Blob): Promise<void> }) {
  const [open, setOpen] = useState(false);
  const [live, setLive] = useState(false);
  const [liveFrames, setLiveFrames] = useState(0);
  const { video, stream, problem } = useCamera(open, null);
  const training = useTrainingStore((s) => isRunActive(s.run.status));
  const capture = () => void captureFrame(video.current, 'camera.jpg').then((file) => file && onCapture(file));
  // The latest callback, without restarting the live loop on every render.
  const liveFrame = useRef(onLiveFrame);
  liveFrame.current = onLiveFrame;

  // Live: a frame, its prediction, then the next frame once the rate allows (never two at once).
  useEffect(() => {
    if (!open || !live || !stream) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = async () => {
      const started = performance.now();
      const frame = await captureFrame(video.current, 'camera.jpg');
      if (stopped) return;
      if (frame) {
        await liveFrame.current(frame);
        if (stopped) return;
        setLiveFrames((count) => count + 1);
      }
      const training = isRunActive(useTrainingStore.getState().run.status);
      const interval = 1000 / (training ? LIVE_FRAMES_PER_SECOND_WHILE_TRAINING : LIVE_FRAMES_PER_SECOND);
      timer = setTimeout(() => void next(), Math.max(0, interval - (performance.now() - started)));
    };
    void next();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [open, live, stream, video]);

  const close = () => {
    setOpen(false);
    setLive(false);
  };

  return (
    <div className="camera">
      {open ? (
        <>
          <video ref={video} autoPlay playsInline muted aria-label="Camera preview" />
          <div className="actions">
            <button type="button" onClick={() => setLive(!live)} disabled={!stream} aria-pressed={live}>
              {live ? 'Pause live' : 'Classify live'}
            </button>
            <button type="button" className="secondary" onClick={capture} disabled={!stream || live}>
              Take photo
            </button>
            <button type="button" className="secondary" onClick={close}>
              Close camera
            </button>
          </div>
          {liveFrames > 0 && (
            <p className="muted" data-testid="live-frames">
              {live ? 'Live' : 'Paused'}: {liveFrames} {liveFrames === 1 ? 'frame' : 'frames'} classified
              {live && training ? ` (${LIVE_FRAMES_PER_SECOND_WHILE_TRAINING} a second while a run trains)` : ''}
            </p>
          )}
        </>
      ) : (
        <button
          type="button"
          className="secondary"
          onClick={() => setOpen(true)}
          disabled={!navigator.mediaDevices?.getUserMedia}
        >
          Use the camera
        </button>
      )}
      {problem && <p className="invalid">{problem}</p>}
    </div>
  );
}

function ResultCard() {
  const { result, running, problem, image } = usePredictionStore();
  if (!image) return null;
  return (
    <Card title="Prediction" busy={running}>
      {running && <p role="status">Classifying…</p>}
      {problem && (
        <Problem title="Could not classify">
          <p>{problem}</p>
        </Problem>
      )}
      {result && <Probabilities result={result} />}
    </Card>
  );
}

function Probabilities({ result }: { result: PredictResult }) {
  const topK = usePredictionStore((s) => s.topK);
  const setTopK = usePredictionStore((s) => s.setTopK);
  const top = (values: number[]) => values.indexOf(Math.max(...values));
  const baseTop = top(result.withoutAdapter);
  const adaptedTop = result.withAdapter ? top(result.withAdapter) : -1;
  const classes = result.classNames.length;
  // Every class in the dataset's order where all are shown and they are few; else the most probable first.
  const cut = topK !== null && topK < classes;
  const ranked = cut || classes > MANY_CLASSES;
  const order = ranked
    ? byProbability(result.withAdapter ?? result.withoutAdapter).slice(0, topK ?? classes)
    : undefined;
  return (
    <>
      <p className="status-line" data-testid="prediction-summary">
        {result.withAdapter
          ? `With the adapter: ${result.classNames[adaptedTop]}. Without: ${result.classNames[baseTop]}.`
          : `Zero-shot: ${result.classNames[baseTop]}.`}
      </p>
      <SelectField
        label="Classes shown"
        value={topK === null ? 'all' : (String(topK) as (typeof TOP_K_CHOICES)[number])}
        options={TOP_K_CHOICES.map((k) => ({ value: k, label: k === 'all' ? `All ${classes}` : `Top ${k}` }))}
        onChange={(k) => setTopK(k === 'all' ? null : Number(k))}
      />
      {ranked && (
        <p className="muted">
          {cut ? `The ${topK} most likely of ${classes} classes.` : `${classes} classes, most likely first.`}
        </p>
      )}
      <ClassBarTable
        label="Class probabilities"
        classNames={result.classNames}
        order={order}
        columns={[
          { title: 'Without adapter', values: result.withoutAdapter, highlight: baseTop },
          ...(result.withAdapter ? [{ title: 'With adapter', values: result.withAdapter, highlight: adaptedTop }] : []),
        ]}
      />
    </>
  );
}
