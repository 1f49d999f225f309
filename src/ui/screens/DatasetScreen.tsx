// The Dataset screen: classes and their images. Folders come in by drag and drop or the folder picker
// (one sub-folder per class), images by dropping them onto a class. Class names become the prompts;
// the split shows which images train and which are held out for evaluation.

import { memo, useEffect, useId, useMemo, useRef, useState, type RefObject } from 'react';
import type { ClassRecord } from '../../storage/db';
import { anArticlePrompt, promptFor, promptsFor } from '../../common/prompts';
import { ClassCapture } from '../components/ClassCapture';
import { Screen } from '../components/Screen';
import { Badge, Card } from '../components/Card';
import { DropZone, FilePicker } from '../components/DropZone';
import { InlineRename } from '../components/fields';
import { Note, Problem } from '../components/Notice';
import { ProgressBar } from '../components/ProgressBar';
import { filesFromDrop, filesFromInput, groupIntoClasses } from '../dropped-files';
import { useDatasetSplit, type DatasetSplit } from '../split';
import { classNameProblem, templateProblem, useDatasetStore, type DatasetImage } from '../stores/dataset';
import { isRunActive, isTrainingAnywhere, useTrainingStore } from '../stores/training';
import { SplitFields } from './SplitFields';

const IMAGE_TYPES = 'image/*';
/** How far outside the window a class card starts showing its thumbnails (so they are there when scrolled to). */
const THUMBNAIL_MARGIN = '600px';
/** Height of a row of thumbnails in rem (3.5rem and the gap), and thumbnails per row in a class card: a placeholder's size. */
const THUMBNAIL_ROW_REM = 3.85;
const THUMBNAILS_PER_ROW = 4;

/** Whether the element has come near the window once (it then stays true): thumbnails render lazily. */
function useSeen<T extends Element>(): [RefObject<T | null>, boolean] {
  const ref = useRef<T>(null);
  const [seen, setSeen] = useState(false);
  useEffect(() => {
    const element = ref.current;
    if (seen || !element) return;
    const observer = new IntersectionObserver(
      (entries) => entries.some((entry) => entry.isIntersecting) && setSeen(true),
      { rootMargin: THUMBNAIL_MARGIN },
    );
    observer.observe(element);
    return () => observer.disconnect();
  }, [seen]);
  return [ref, seen];
}

export function DatasetScreen() {
  const classes = useDatasetStore((s) => s.classes);
  const images = useDatasetStore((s) => s.images);
  const settings = useTrainingStore((s) => s.settings);
  const template = useDatasetStore((s) => s.promptTemplate);
  const split = useDatasetSplit(settings, settings.seed);
  const imagesByClass = useImagesByClass(images);
  const countsByClass = new Map(split.counts.map((counts) => [counts.classId, counts]));
  return (
    <Screen
      title="Dataset"
      intro={
        <>
          Your labelled images, one class per folder. Each class name becomes a prompt such as{' '}
          <QuotedPrompt text={promptFor('golden_retriever', template)} /> Images stay in this browser.
        </>
      }
    >
      <AddCard />
      <DatasetProblems />
      <SplitCard split={split} />
      <PromptCard />
      <ClassesLockedNote />
      <div className="class-grid">
        {classes.map((c) => {
          const mine = imagesByClass.get(c.id) ?? NO_IMAGES;
          const counts = countsByClass.get(c.id);
          const heldOut = mine.map((image) => (split.roles.get(image.id) === 'held-out' ? 'h' : '-')).join('');
          return (
            <ClassCard
              key={c.id}
              record={c}
              images={mine}
              heldOut={heldOut}
              train={counts?.train ?? 0}
              heldOutCount={counts?.heldOut ?? 0}
            />
          );
        })}
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
      <DropZone
        label="Drop class folders"
        disabled={busy}
        className="drop-zone-large"
        onDrop={(dataTransfer) => void filesFromDrop(dataTransfer).then(add)}
      >
        <p>
          Drop a folder with <strong>one sub-folder per class</strong> (or several class folders) here, or
        </p>
        <FilePicker
          label="Choose a folder"
          directory
          multiple
          disabled={busy}
          onFiles={(files) => add(filesFromInput(files))}
        />
      </DropZone>
      {adding && (
        <ProgressBar
          label="Adding images"
          value={adding.done}
          max={adding.total}
          detail={`${adding.done} of ${adding.total}`}
        />
      )}
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          void addClass(name).then(() => setName(''));
        }}
      >
        <div className="field grow">
          <label htmlFor={nameId}>New class name</label>
          <input
            id={nameId}
            value={name}
            onChange={(event) => setName(event.target.value)}
            placeholder="e.g. golden_retriever"
          />
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
        <Problem
          title={`${rejected.length} ${rejected.length === 1 ? 'file was' : 'files were'} skipped`}
          onDismiss={dismissRejected}
        >
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
  const running = useTrainingStore((s) => isRunActive(s.run.status));
  const train = split.support.imageIds.length;
  const heldOut = split.heldOut.imageIds.length;
  return (
    <Card title="Training and held-out images">
      <SplitFields disabled={running} />
      <p role="status" data-testid="split-summary">
        {train + heldOut === 0
          ? 'No images yet.'
          : `${train} ${train === 1 ? 'image trains' : 'images train'}, ${heldOut} ${heldOut === 1 ? 'is' : 'are'} held out for evaluation.`}
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

const NO_IMAGES: readonly DatasetImage[] = [];

/**
 * The images of each class, grouped once rather than filtered per card; a class whose images did not
 * change keeps its array, so that its (memoised) card is not rendered again when another class changes.
 */
function useImagesByClass(images: readonly DatasetImage[]): Map<string, readonly DatasetImage[]> {
  const previous = useRef(new Map<string, readonly DatasetImage[]>());
  return useMemo(() => {
    const lists = new Map<string, DatasetImage[]>();
    for (const image of images) {
      const list = lists.get(image.classId);
      if (list) list.push(image);
      else lists.set(image.classId, [image]);
    }
    const byClass = new Map<string, readonly DatasetImage[]>(lists);
    for (const [classId, list] of byClass) {
      const before = previous.current.get(classId);
      if (before && before.length === list.length && before.every((image, i) => image === list[i]))
        byClass.set(classId, before);
    }
    previous.current = byClass;
    return byClass;
  }, [images]);
}

/** `heldOut` marks each image's role in the split, in order ('h' held out, '-' trains): a string, so that memo compares it by value. */
/** The dataset's prompt template; each class card can replace it with the class's own prompt. */
function PromptCard() {
  const template = useDatasetStore((s) => s.promptTemplate);
  const setPromptTemplate = useDatasetStore((s) => s.setPromptTemplate);
  return (
    <Card title="Prompts">
      <div className="field prompt-field">
        <span>Prompt template</span>
        <InlineRename
          label="Prompt template"
          value={template}
          check={(text) => templateProblem(text) && `${templateProblem(text)} It stays “${template}”.`}
          onCommit={(text) => void setPromptTemplate(text)}
        />
      </div>
      <p className="muted">
        {'{}'} is replaced by each class name (underscores read as spaces):{' '}
        <QuotedPrompt text={promptFor('golden_retriever', template)} /> A class can have its own prompt instead, on its
        card. Adapters record the prompts they were trained with, and Evaluate and Try it use those.
      </p>
    </Card>
  );
}

/** A prompt quoted at the end of a sentence: the sentence's full stop is the prompt's own when it has one. */
function QuotedPrompt({ text }: { text: string }) {
  return (
    <>
      <q>{text}</q>
      {/[.!?]$/.test(text) ? '' : '.'}
    </>
  );
}

/** The id of the note saying why Delete is off on every class card. */
const CLASSES_LOCKED_NOTE = 'classes-locked-note';

/** While a run trains (here or in another tab) its classes cannot be deleted: the run and its adapter name them. */
function ClassesLockedNote() {
  const locked = useTrainingStore(isTrainingAnywhere);
  const elsewhere = useTrainingStore((s) => s.elsewhere !== null && !isRunActive(s.run.status));
  if (!locked) return null;
  return (
    <Note>
      <p id={CLASSES_LOCKED_NOTE}>
        A run is training on these classes {elsewhere ? 'in another tab' : 'now'}: a class can be deleted once the run
        ends (or is stopped).
      </p>
    </Note>
  );
}

const ClassCard = memo(function ClassCard({
  record,
  images: mine,
  heldOut,
  train,
  heldOutCount,
}: {
  record: ClassRecord;
  images: readonly DatasetImage[];
  heldOut: string;
  train: number;
  heldOutCount: number;
}) {
  const renameClass = useDatasetStore((s) => s.renameClass);
  const setClassPrompt = useDatasetStore((s) => s.setClassPrompt);
  const template = useDatasetStore((s) => s.promptTemplate);
  const [prompt] = promptsFor(
    [record.name],
    template,
    record.prompt === undefined ? {} : { [record.name]: record.prompt },
  );
  const anPrompt = record.prompt === undefined ? anArticlePrompt(record.name, template) : null;
  const deleteClass = useDatasetStore((s) => s.deleteClass);
  const locked = useTrainingStore(isTrainingAnywhere);
  const addImages = useDatasetStore((s) => s.addImages);
  const busy = useDatasetStore((s) => s.adding !== null);
  const [card, seen] = useSeen<HTMLElement>();
  return (
    <article ref={card} className="card class-card" aria-label={`Class ${record.name}`}>
      <header className="class-header">
        <InlineRename
          label={`Name of class ${record.name}`}
          value={record.name}
          check={(name) => {
            const problem = classNameProblem(name, useDatasetStore.getState().classes, record.id);
            return problem && `${problem} The name stays “${record.name}”.`;
          }}
          onCommit={(name) => void renameClass(record.id, name)}
        />
        <button
          type="button"
          className="secondary small"
          onClick={() => void deleteClass(record.id)}
          disabled={locked}
          aria-describedby={locked ? CLASSES_LOCKED_NOTE : undefined}
          aria-label={`Delete class ${record.name}`}
        >
          Delete
        </button>
      </header>
      <p className="prompt" data-testid="class-prompt">
        Prompt: <q>{prompt}</q>
      </p>
      {anPrompt && (
        <p className="muted prompt-suggestion">
          CLIP reads the prompt as written.{' '}
          <button type="button" className="secondary small" onClick={() => void setClassPrompt(record.id, anPrompt)}>
            Use “{anPrompt}”
          </button>
        </p>
      )}
      <div className="prompt-field">
        <InlineRename
          label={`Own prompt of class ${record.name}`}
          value={record.prompt ?? ''}
          placeholder="Own prompt (optional)"
          check={() => null}
          onCommit={(text) => void setClassPrompt(record.id, text)}
        />
      </div>
      <p className="muted" data-testid="class-count">
        {mine.length} {mine.length === 1 ? 'image' : 'images'}
        {mine.length > 0 && ` · ${train} train · ${heldOutCount} held out`}
      </p>
      <DropZone
        label={`Drop images onto ${record.name}`}
        disabled={busy}
        onDrop={(dataTransfer) =>
          void filesFromDrop(dataTransfer).then((picked) =>
            addImages(
              record.id,
              picked.map((p) => p.file),
            ),
          )
        }
      >
        {seen ? (
          <ul className="thumbnails">
            {mine.map((image, i) => (
              <Thumbnail key={image.id} image={image} heldOut={heldOut[i] === 'h'} />
            ))}
          </ul>
        ) : (
          <div
            className="thumbnails"
            style={{ height: `${Math.ceil(mine.length / THUMBNAILS_PER_ROW) * THUMBNAIL_ROW_REM}rem` }}
          />
        )}
        <FilePicker
          label={`Add images to ${record.name}`}
          multiple
          accept={IMAGE_TYPES}
          disabled={busy}
          secondary
          onFiles={(files) => void addImages(record.id, [...files])}
        />
      </DropZone>
      <ClassCapture classId={record.id} className={record.name} />
    </article>
  );
});

function Thumbnail({ image, heldOut }: { image: DatasetImage; heldOut: boolean }) {
  const deleteImage = useDatasetStore((s) => s.deleteImage);
  return (
    <li className={`thumbnail ${heldOut ? 'held-out' : 'train'}`}>
      <img
        src={image.thumbnailUrl}
        alt={image.name}
        title={`${image.name} (${image.width}×${image.height})`}
        loading="lazy"
      />
      {heldOut && <Badge tone="pending">held out</Badge>}
      <button
        type="button"
        className="thumbnail-delete"
        onClick={() => void deleteImage(image.id)}
        aria-label={`Delete image ${image.name}`}
      >
        ×
      </button>
    </li>
  );
}
