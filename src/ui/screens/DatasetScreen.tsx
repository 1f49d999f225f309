// The Dataset screen: classes and their images. Folders come in by drag and drop or the folder picker
// (one sub-folder per class), images by dropping them onto a class. Class names become the prompts;
// the split shows which images train and which are held out for evaluation.

import { useId, useState } from 'react';
import type { ClassRecord } from '../../storage/db';
import { promptFor } from '../../model/zero-shot';
import { ClassCapture } from '../components/ClassCapture';
import { Screen } from '../components/Screen';
import { Badge, Card } from '../components/Card';
import { DropZone, FilePicker } from '../components/DropZone';
import { InlineRename, NumberField } from '../components/fields';
import { Note, Problem } from '../components/Notice';
import { ProgressBar } from '../components/ProgressBar';
import { filesFromDrop, filesFromInput, groupIntoClasses } from '../dropped-files';
import { useDatasetSplit, type DatasetSplit } from '../split';
import { useDatasetStore, type DatasetImage } from '../stores/dataset';
import { isRunActive, useTrainingStore } from '../stores/training';

const IMAGE_TYPES = 'image/*';

export function DatasetScreen() {
  const classes = useDatasetStore((s) => s.classes);
  const shots = useTrainingStore((s) => s.settings.shots);
  const seed = useTrainingStore((s) => s.settings.seed);
  const split = useDatasetSplit(shots, seed);
  return (
    <Screen
      title="Dataset"
      intro={
        <>
          Your labelled images, one class per folder. Each class name becomes a prompt such as <q>{promptFor('golden_retriever')}</q>.
          Images stay in this browser.
        </>
      }
    >
      <AddCard />
      <DatasetProblems />
      <SplitCard split={split} />
      <div className="class-grid">
        {classes.map((c) => (
          <ClassCard key={c.id} record={c} split={split} />
        ))}
      </div>
    </Screen>
  );
}

function AddCard() {
  const addFolders = useDatasetStore((s) => s.addFolders);
  const addClass = useDatasetStore((s) => s.addClass);
  const adding = useDatasetStore((s) => s.adding);
  const [name, setName] = useState('');
  const nameId = useId();
  const busy = adding !== null;
  const add = (picked: Parameters<typeof groupIntoClasses>[0]) => {
    const { classes, rejected } = groupIntoClasses(picked);
    void addFolders(classes, rejected);
  };
  return (
    <Card title="Add images">
      <DropZone label="Drop class folders" disabled={busy} className="drop-zone-large" onDrop={(dataTransfer) => void filesFromDrop(dataTransfer).then(add)}>
        <p>
          Drop a folder with <strong>one sub-folder per class</strong> (or several class folders) here, or
        </p>
        <FilePicker label="Choose a folder" directory multiple disabled={busy} onFiles={(files) => add(filesFromInput(files))} />
      </DropZone>
      {adding && <ProgressBar label="Adding images" value={adding.done} max={adding.total} detail={`${adding.done} of ${adding.total}`} />}
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          void addClass(name).then(() => setName(''));
        }}
      >
        <div className="field grow">
          <label htmlFor={nameId}>New class name</label>
          <input id={nameId} value={name} onChange={(event) => setName(event.target.value)} placeholder="e.g. golden_retriever" />
        </div>
        <button type="submit" disabled={!name.trim()}>
          Add class
        </button>
      </form>
    </Card>
  );
}

function DatasetProblems() {
  const problem = useDatasetStore((s) => s.problem);
  const rejected = useDatasetStore((s) => s.rejected);
  const dismissProblem = useDatasetStore((s) => s.dismissProblem);
  const dismissRejected = useDatasetStore((s) => s.dismissRejected);
  return (
    <>
      {problem && (
        <Problem title="Not done" onDismiss={dismissProblem}>
          <p data-testid="dataset-problem">{problem}</p>
        </Problem>
      )}
      {rejected.length > 0 && (
        <Problem title={`${rejected.length} ${rejected.length === 1 ? 'file was' : 'files were'} skipped`} onDismiss={dismissRejected}>
          <ul className="rejected" aria-label="Skipped files">
            {rejected.map((file) => (
              <li key={file.name}>
                <strong>{file.name}</strong>: {file.reason}
              </li>
            ))}
          </ul>
          <p>The other images were added.</p>
        </Problem>
      )}
    </>
  );
}

function SplitCard({ split }: { split: DatasetSplit }) {
  const settings = useTrainingStore((s) => s.settings);
  const update = useTrainingStore((s) => s.update);
  const running = useTrainingStore((s) => isRunActive(s.run.status));
  const train = split.support.imageIds.length;
  const heldOut = split.heldOut.imageIds.length;
  return (
    <Card title="Training and held-out images">
      <div className="field-row">
        <NumberField label="Shots per class" integer min={1} value={settings.shots} disabled={running} onChange={(shots) => update({ shots })} help="Training images per class (CLIP-LoRA uses 1 to 16)." />
        <NumberField label="Seed" integer value={settings.seed} disabled={running} onChange={(seed) => update({ seed })} help="Seeds the split, the batches and the adapter’s start." />
      </div>
      <p role="status" data-testid="split-summary">
        {train + heldOut === 0 ? 'No images yet.' : `${train} ${train === 1 ? 'image trains' : 'images train'}, ${heldOut} ${heldOut === 1 ? 'is' : 'are'} held out for evaluation.`}
      </p>
      {split.warnings.length > 0 && (
        <Note>
          <ul>
            {split.warnings.map((warning) => (
              <li key={warning}>{warning}</li>
            ))}
          </ul>
        </Note>
      )}
    </Card>
  );
}

function ClassCard({ record, split }: { record: ClassRecord; split: DatasetSplit }) {
  const images = useDatasetStore((s) => s.images);
  const renameClass = useDatasetStore((s) => s.renameClass);
  const deleteClass = useDatasetStore((s) => s.deleteClass);
  const addImages = useDatasetStore((s) => s.addImages);
  const busy = useDatasetStore((s) => s.adding !== null);
  const mine = images.filter((image) => image.classId === record.id);
  const counts = split.counts.find((c) => c.classId === record.id);
  return (
    <article className="card class-card" aria-label={`Class ${record.name}`}>
      <header className="class-header">
        <InlineRename label={`Name of class ${record.name}`} value={record.name} onCommit={(name) => void renameClass(record.id, name)} />
        <button type="button" className="secondary small" onClick={() => void deleteClass(record.id)} aria-label={`Delete class ${record.name}`}>
          Delete
        </button>
      </header>
      <p className="prompt">
        Prompt: <q>{promptFor(record.name)}</q>
      </p>
      <p className="muted" data-testid="class-count">
        {mine.length} {mine.length === 1 ? 'image' : 'images'}
        {counts && mine.length > 0 && ` · ${counts.train} train · ${counts.heldOut} held out`}
      </p>
      <DropZone label={`Drop images onto ${record.name}`} disabled={busy} onDrop={(dataTransfer) => void filesFromDrop(dataTransfer).then((picked) => addImages(record.id, picked.map((p) => p.file)))}>
        <ul className="thumbnails">
          {mine.map((image) => (
            <Thumbnail key={image.id} image={image} role={split.roles.get(image.id)} />
          ))}
        </ul>
        <FilePicker label={`Add images to ${record.name}`} multiple accept={IMAGE_TYPES} disabled={busy} secondary onFiles={(files) => void addImages(record.id, [...files])} />
      </DropZone>
      <ClassCapture classId={record.id} className={record.name} />
    </article>
  );
}

function Thumbnail({ image, role }: { image: DatasetImage; role: 'train' | 'held-out' | undefined }) {
  const deleteImage = useDatasetStore((s) => s.deleteImage);
  return (
    <li className={`thumbnail ${role ?? ''}`}>
      <img src={image.thumbnailUrl} alt={image.name} title={`${image.name} (${image.width}×${image.height})`} loading="lazy" />
      {role === 'held-out' && <Badge tone="pending">held out</Badge>}
      <button type="button" className="thumbnail-delete" onClick={() => void deleteImage(image.id)} aria-label={`Delete image ${image.name}`}>
        ×
      </button>
    </li>
  );
}
