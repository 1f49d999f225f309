// The adapter library: every trained or imported adapter (IndexedDB), the ones picked for comparison,
// downloads (the octoclip file, and PEFT's two files) and imports (checked by the engine against the
// loaded model).

import { create } from 'zustand';
import { ADAPTER_FILE_EXTENSION } from '../../common/file-names';
import type { AdapterRecord } from '../../storage/db';
import { deleteAdapter, listAdapters, renameAdapter, saveAdapter } from '../../storage/adapters';
import { fileSlug, saveFile } from '../download';
import { errorMessage, useEngineStore } from './engine';
import { useUndoStore } from './undo';

export interface AdaptersState {
  loaded: boolean;
  /** Newest first. */
  adapters: AdapterRecord[];
  /** Ids picked for the comparison table, in the order picked. */
  compared: string[];
  busy: boolean;
  problem: string | null;
  /** The last import or export that worked, for the status line. */
  notice: string | null;
  load(): Promise<void>;
  /** Stores a new adapter; `finishedRunId` names the training run it comes from, whose checkpoint it replaces. */
  add(record: AdapterRecord, finishedRunId?: string): Promise<void>;
  rename(id: string, name: string): Promise<void>;
  remove(id: string): Promise<void>;
  importFile(file: File): Promise<void>;
  toggleCompared(id: string): void;
  download(id: string): void;
  downloadPeft(id: string, part: 'weights' | 'config'): Promise<void>;
  dismissProblem(): void;
}

export const PEFT_FILE_NAMES = { weights: 'adapter_model.safetensors', config: 'adapter_config.json' } as const;

function withoutExtension(fileName: string): string {
  return fileName.endsWith(ADAPTER_FILE_EXTENSION) ? fileName.slice(0, -ADAPTER_FILE_EXTENSION.length) : fileName.replace(/\.safetensors$/i, '');
}

export const useAdaptersStore = create<AdaptersState>()((set, get) => {
  const find = (id: string) => get().adapters.find((a) => a.id === id);

  async function attempt(work: () => Promise<void>): Promise<void> {
    set({ busy: true, problem: null, notice: null });
    try {
      await work();
    } catch (error) {
      set({ problem: errorMessage(error) });
    } finally {
      set({ busy: false });
    }
  }

  return {
    loaded: false,
    adapters: [],
    compared: [],
    busy: false,
    problem: null,
    notice: null,

    async load() {
      set({ adapters: await listAdapters(), loaded: true });
    },

    async add(record, finishedRunId) {
      await saveAdapter(record, finishedRunId);
      set((state) => ({ adapters: [record, ...state.adapters.filter((a) => a.id !== record.id)] }));
    },

    async rename(id, name) {
      const clean = name.trim();
      if (!clean || find(id)?.name === clean) return;
      await attempt(async () => {
        await renameAdapter(id, clean);
        set((state) => ({ adapters: state.adapters.map((a) => (a.id === id ? { ...a, name: clean } : a)) }));
      });
    },

    async remove(id) {
      await attempt(async () => {
        const deleted = await deleteAdapter(id);
        set((state) => ({ adapters: state.adapters.filter((a) => a.id !== id), compared: state.compared.filter((c) => c !== id) }));
        if (deleted) useUndoStore.getState().offerUndo({ message: `Deleted the adapter “${deleted.name}”.`, undo: () => get().add(deleted) });
      });
    },

    async importFile(file) {
      await attempt(async () => {
        const meta = await useEngineStore.getState().request('inspectAdapter', { file, fileName: file.name });
        const name = withoutExtension(file.name) || 'imported adapter';
        await get().add({ id: crypto.randomUUID(), name, createdAt: Date.now(), source: 'imported', meta, file });
        set({ notice: `Imported “${name}”.` });
      });
    },

    toggleCompared(id) {
      set((state) => ({ compared: state.compared.includes(id) ? state.compared.filter((c) => c !== id) : [...state.compared, id] }));
    },

    download(id) {
      const record = find(id);
      if (record) saveFile(record.file, `${fileSlug(record.name)}${ADAPTER_FILE_EXTENSION}`);
    },

    async downloadPeft(id, part) {
      const record = find(id);
      if (!record) return;
      await attempt(async () => {
        const files = await useEngineStore.getState().request('exportPeft', { file: record.file });
        if (part === 'weights') saveFile(new Uint8Array(files.weights), PEFT_FILE_NAMES.weights);
        else saveFile(files.config, PEFT_FILE_NAMES.config, 'application/json');
      });
    },

    dismissProblem() {
      set({ problem: null });
    },
  };
});
