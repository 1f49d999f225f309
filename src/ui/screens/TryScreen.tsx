// The Try it screen: drop, paste, pick or photograph an image and compare the class probabilities of
// the base model with those of an adapter.

import { useEffect, useState } from 'react';
import { captureFrame, useCamera } from '../camera';
import { Screen } from '../components/Screen';
import { ClassBarTable } from '../components/Bar';
import { Card } from '../components/Card';
import { DropZone, FilePicker } from '../components/DropZone';
import { SelectField } from '../components/fields';
import { Problem } from '../components/Notice';
import { useAdaptersStore } from '../stores/adapters';
import { usePredictionStore } from '../stores/prediction';
import type { PredictResult } from '../../worker/protocol';
import { MANY_CLASSES } from '../scale';

/** Class indices, most probable first. */
function byProbability(probabilities: readonly number[]): number[] {
  return probabilities.map((_, c) => c).sort((a, b) => probabilities[b] - probabilities[a]);
}

const NO_ADAPTER = '';

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
        <Camera onCapture={(blob) => void setImage(blob)} />
      </div>
    </Card>
  );
}

function Camera({ onCapture }: { onCapture(blob: Blob): void }) {
  const [open, setOpen] = useState(false);
  const { video, stream, problem } = useCamera(open, null);
  const capture = () => void captureFrame(video.current, 'camera.jpg').then((file) => file && onCapture(file));

  return (
    <div className="camera">
      {open ? (
        <>
          <video ref={video} autoPlay playsInline muted aria-label="Camera preview" />
          <div className="actions">
            <button type="button" onClick={capture} disabled={!stream}>
              Take photo
            </button>
            <button type="button" className="secondary" onClick={() => setOpen(false)}>
              Close camera
            </button>
          </div>
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
  const top = (values: number[]) => values.indexOf(Math.max(...values));
  const baseTop = top(result.withoutAdapter);
  const adaptedTop = result.withAdapter ? top(result.withAdapter) : -1;
  const many = result.classNames.length > MANY_CLASSES;
  return (
    <>
      <p className="status-line" data-testid="prediction-summary">
        {result.withAdapter
          ? `With the adapter: ${result.classNames[adaptedTop]}. Without: ${result.classNames[baseTop]}.`
          : `Zero-shot: ${result.classNames[baseTop]}.`}
      </p>
      {many && <p className="muted">{result.classNames.length} classes, most likely first.</p>}
      <ClassBarTable
        label="Class probabilities"
        classNames={result.classNames}
        order={many ? byProbability(result.withAdapter ?? result.withoutAdapter) : undefined}
        columns={[
          { title: 'Without adapter', values: result.withoutAdapter, highlight: baseTop },
          ...(result.withAdapter ? [{ title: 'With adapter', values: result.withAdapter, highlight: adaptedTop }] : []),
        ]}
      />
    </>
  );
}
