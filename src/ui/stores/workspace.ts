// The whole workspace to and from one file (see storage/workspace): export, and import that adds to
// what is here, then shows it on every screen.

import { create } from 'zustand';
import {
  decodeWorkspace,
  encodeWorkspace,
  importWorkspace,
  readStoredWorkspace,
  WORKSPACE_FILE_EXTENSION,
} from '../../storage/workspace';
import { saveFile } from '../download';
import { useAdaptersStore } from './adapters';
import { useDatasetStore } from './dataset';
import { errorMessage } from './engine';
import { useTrainingStore } from './training';

/** "3 classes, 24 images and 1 adapter". */
function describeCounts(counts: { classes: number; images: number; adapters: number }): string {
  const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : noun.endsWith('s') ? 'es' : 's'}`;
  return `${count(counts.classes, 'class')}, ${count(counts.images, 'image')} and ${count(counts.adapters, 'adapter')}`;
}

/** The settings a workspace carries: the Train screen's, by the localStorage key it persists under. */
const settingsKeys = () => [useTrainingStore.persist.getOptions().name!];

export interface WorkspaceState {
  busy: boolean;
  problem: string | null;
  /** The last export or import that worked, for the status line. */
  notice: string | null;
  exportFile(): Promise<void>;
  importFile(file: File): Promise<void>;
  dismissProblem(): void;
}

export const useWorkspaceStore = create<WorkspaceState>()((set) => {
  async function attempt(work: () => Promise<string>): Promise<void> {
    set({ busy: true, problem: null, notice: null });
    try {
      set({ notice: await work() });
    } catch (error) {
      set({ problem: errorMessage(error) });
    } finally {
      set({ busy: false });
    }
  }

  return {
    busy: false,
    problem: null,
    notice: null,

    async exportFile() {
      await attempt(async () => {
        const stored = await readStoredWorkspace();
        const settings = Object.fromEntries(
          settingsKeys().flatMap((key) => {
            const value = localStorage.getItem(key);
            return value === null ? [] : [[key, value]];
          }),
        );
        const date = new Date().toISOString().slice(0, 10);
        saveFile(encodeWorkspace({ ...stored, settings }), `octoclip-${date}${WORKSPACE_FILE_EXTENSION}`);
        return `Exported ${describeCounts({ classes: stored.classes.length, images: stored.images.length, adapters: stored.adapters.length })}.`;
      });
    },

    async importFile(file) {
      await attempt(async () => {
        const workspace = await decodeWorkspace(file, file.name);
        const added = await importWorkspace(workspace);
        for (const key of settingsKeys()) {
          const value = workspace.settings[key];
          if (value !== undefined) localStorage.setItem(key, value);
        }
        await Promise.all([
          useTrainingStore.persist.rehydrate(),
          useDatasetStore.getState().load(),
          useAdaptersStore.getState().load(),
        ]);
        return `Imported ${describeCounts(added)} from ${file.name}, and its settings.`;
      });
    },

    dismissProblem() {
      set({ problem: null });
    },
  };
});
