// The dataset: classes in label order and their images (kept in IndexedDB), thumbnails for the page,
// and the files that could not be added, with the reason. Image bytes stay in storage as Blobs; the
// engine decodes them when a run needs them.

import { create } from 'zustand';
import type { ClassRecord, ImageRecord } from '../../storage/db';
import { DEFAULT_TEMPLATE } from '../../common/prompts';
import {
  addToDataset,
  deleteClass,
  deleteImage,
  loadDataset,
  loadPromptTemplate,
  renameClass,
  savePromptTemplate,
  setClassPrompt,
  withPrompt,
  type StoredDataset,
} from '../../storage/dataset';
import type { ClassFiles } from '../dropped-files';
import { prepareImages, type PreparedImage, type RejectedFile } from '../image-files';
import { errorMessage } from './engine';
import { useUndoStore } from './undo';

export interface DatasetImage {
  id: string;
  classId: string;
  name: string;
  width: number;
  height: number;
  /** An object URL of the stored thumbnail. */
  thumbnailUrl: string;
}

export interface DatasetState {
  loaded: boolean;
  classes: ClassRecord[];
  images: DatasetImage[];
  /** The prompt every class's name fills in, unless the class has its own (ClassRecord.prompt). */
  promptTemplate: string;
  /** Files left out of the last additions, with the reason. */
  rejected: RejectedFile[];
  /** Files of the addition in progress: done of total. */
  adding: { done: number; total: number } | null;
  problem: string | null;
  load(): Promise<void>;
  /** Adds classes from folders; a folder named like an existing class adds to it. */
  addFolders(classes: readonly ClassFiles[], rejected?: readonly RejectedFile[]): Promise<void>;
  addImages(classId: string, files: readonly File[]): Promise<void>;
  addClass(name: string): Promise<void>;
  renameClass(id: string, name: string): Promise<void>;
  setPromptTemplate(template: string): Promise<void>;
  /** A class's own prompt; empty text gives it the template's again. */
  setClassPrompt(id: string, prompt: string): Promise<void>;
  deleteClass(id: string): Promise<void>;
  deleteImage(id: string): Promise<void>;
  dismissRejected(): void;
  dismissProblem(): void;
}

/** "cat " and "Cat" stay distinct classes; only surrounding spaces are dropped. */
function cleanClassName(name: string): string {
  return name.trim().replace(/\s+/g, ' ');
}

/** Why a class cannot be named `name` (no name, or another class has it), or null when it can. */
export function classNameProblem(name: string, classes: readonly ClassRecord[], ownId?: string): string | null {
  const clean = cleanClassName(name);
  if (!clean) return 'A class needs a name.';
  if (classes.some((c) => c.name === clean && c.id !== ownId)) return `There is already a class named “${clean}”.`;
  return null;
}

/** Why `template` cannot be the prompt template (no {} for the class name), or null when it can. */
export function templateProblem(template: string): string | null {
  return template.includes('{}') ? null : 'The template needs {} where the class name goes.';
}

/** The classes' own prompts by class name, as training and adapter files take them. */
export function classPromptsOf(classes: readonly ClassRecord[]): Record<string, string> {
  return Object.fromEntries(classes.flatMap((c) => (c.prompt === undefined ? [] : [[c.name, c.prompt]])));
}

function toDatasetImage(record: ImageRecord): DatasetImage {
  const { id, classId, name, width, height } = record;
  return { id, classId, name, width, height, thumbnailUrl: URL.createObjectURL(record.thumbnail) };
}

function imageRecord(classId: string, image: PreparedImage, addedAt: number): ImageRecord {
  return { id: crypto.randomUUID(), classId, addedAt, ...image };
}

export const useDatasetStore = create<DatasetState>()((set, get) => {
  /** Stores new classes and images in one transaction, then shows them; false when storing failed (the problem says why). */
  async function store(newClasses: ClassRecord[], records: ImageRecord[], rejected: RejectedFile[]): Promise<boolean> {
    try {
      await addToDataset(newClasses, records);
    } catch (error) {
      set({ problem: errorMessage(error), rejected: [...get().rejected, ...rejected] });
      return false;
    }
    set((state) => ({
      classes: [...state.classes, ...newClasses],
      images: [...state.images, ...records.map(toDatasetImage)],
      rejected: [...state.rejected, ...rejected],
    }));
    return true;
  }

  /** Offers to store the deleted records again; they come back where they were. */
  function offerRestore(message: string, deleted: StoredDataset): void {
    useUndoStore.getState().offerUndo({
      message,
      undo: async () => {
        await addToDataset(deleted.classes, deleted.images);
        await get().load();
      },
    });
  }

  function nextPosition(): number {
    return Math.max(-1, ...get().classes.map((c) => c.position)) + 1;
  }

  return {
    loaded: false,
    classes: [],
    images: [],
    promptTemplate: DEFAULT_TEMPLATE,
    rejected: [],
    adding: null,
    problem: null,

    async load() {
      const [{ classes, images }, promptTemplate] = await Promise.all([loadDataset(), loadPromptTemplate()]);
      get().images.forEach((image) => URL.revokeObjectURL(image.thumbnailUrl));
      set({ loaded: true, classes, images: images.map(toDatasetImage), promptTemplate });
    },

    async addFolders(folders, rejectedBefore = []) {
      if (get().adding) return;
      const total = folders.reduce((sum, folder) => sum + folder.files.length, 0);
      set({ adding: { done: 0, total }, problem: null, rejected: [...rejectedBefore] });
      let done = 0;
      // One transaction per class folder: each class shows as soon as it is stored.
      for (const folder of folders) {
        const { prepared, rejected } = await prepareImages(folder.files, (count) =>
          set({ adding: { done: done + count, total } }),
        );
        done += folder.files.length;
        const skipped = rejected.map((file) => ({ ...file, name: `${folder.className}/${file.name}` }));
        const name = cleanClassName(folder.className);
        const existing = get().classes.find((c) => c.name === name);
        const target = existing ?? { id: crypto.randomUUID(), name, position: nextPosition() };
        const addedAt = Date.now();
        const records = prepared.map((image, i) => imageRecord(target.id, image, addedAt + i));
        const newClasses = existing || prepared.length === 0 ? [] : [target];
        if (!(await store(newClasses, records, skipped))) break;
      }
      set({ adding: null });
    },

    async addImages(classId, files) {
      if (get().adding) return;
      set({ adding: { done: 0, total: files.length }, problem: null, rejected: [] });
      const { prepared, rejected } = await prepareImages(files, (done) =>
        set({ adding: { done, total: files.length } }),
      );
      const addedAt = Date.now();
      await store(
        [],
        prepared.map((image, i) => imageRecord(classId, image, addedAt + i)),
        rejected,
      );
      set({ adding: null });
    },

    async addClass(name) {
      const clean = cleanClassName(name);
      const problem = classNameProblem(clean, get().classes);
      if (problem) {
        set({ problem });
        return;
      }
      await store([{ id: crypto.randomUUID(), name: clean, position: nextPosition() }], [], []);
    },

    async renameClass(id, name) {
      const clean = cleanClassName(name);
      const current = get().classes.find((c) => c.id === id);
      // The screen checks first (classNameProblem) and says why beside the field; this only guards.
      if (!current || clean === current.name || classNameProblem(clean, get().classes, id)) return;
      try {
        await renameClass(id, clean);
        set((state) => ({
          classes: state.classes.map((c) => (c.id === id ? { ...c, name: clean } : c)),
          problem: null,
        }));
      } catch (error) {
        set({ problem: errorMessage(error) });
      }
    },

    async setPromptTemplate(template) {
      // The screen refuses a template without {} beside the field (templateProblem); this only guards.
      if (templateProblem(template) || template === get().promptTemplate) return;
      try {
        await savePromptTemplate(template);
        set({ promptTemplate: template, problem: null });
      } catch (error) {
        set({ problem: errorMessage(error) });
      }
    },

    async setClassPrompt(id, text) {
      const prompt = text.trim() || undefined;
      try {
        await setClassPrompt(id, prompt);
        set((state) => ({
          classes: state.classes.map((c) => (c.id === id ? withPrompt(c, prompt) : c)),
          problem: null,
        }));
      } catch (error) {
        set({ problem: errorMessage(error) });
      }
    },

    async deleteClass(id) {
      const deleted = await deleteClass(id);
      const gone = get().images.filter((image) => image.classId === id);
      gone.forEach((image) => URL.revokeObjectURL(image.thumbnailUrl));
      set((state) => ({
        classes: state.classes.filter((c) => c.id !== id),
        images: state.images.filter((image) => image.classId !== id),
      }));
      const [record] = deleted.classes;
      if (record)
        offerRestore(
          `Deleted the class “${record.name}” and its ${deleted.images.length} ${deleted.images.length === 1 ? 'image' : 'images'}.`,
          deleted,
        );
    },

    async deleteImage(id) {
      const deleted = await deleteImage(id);
      const image = get().images.find((i) => i.id === id);
      if (image) URL.revokeObjectURL(image.thumbnailUrl);
      set((state) => ({ images: state.images.filter((i) => i.id !== id) }));
      if (deleted) offerRestore(`Deleted the image ${deleted.name}.`, { classes: [], images: [deleted] });
    },

    dismissRejected() {
      set({ rejected: [] });
    },

    dismissProblem() {
      set({ problem: null });
    },
  };
});
