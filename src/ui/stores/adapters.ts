// The adapter library: every trained or imported adapter (IndexedDB), the ones picked for comparison,
// downloads (the octoclip file, PEFT's two files, the self-contained PEFT zip) and imports (an octoclip file,
// or a PEFT zip or folder converted here; both checked by the engine against the loaded model).

import { create } from 'zustand';
import { ADAPTER_FILE_EXTENSION, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../../common/file-names';
import { readZip, writeZip } from '../../common/zip';
import type { AdapterRecord } from '../../storage/db';
import { deleteAdapter, listAdapters, renameAdapter, saveAdapter } from '../../storage/adapters';
import { fileSlug, saveFile } from '../download';
import { errorMessage, useEngineStore } from './engine';
import { useUndoStore } from './undo';
import { useModelStore } from './model';

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
  /** A PEFT export: one .zip, or the files of its folder. */
  importPeft(files: File[]): Promise<void>;
  toggleCompared(id: string): void;
  download(id: string): Promise<void>;
  downloadPeft(id: string, part: 'weights' | 'config'): Promise<void>;
  /** The self-contained PEFT export (weights, config, classes.json, README.md model card) as one zip. */
  downloadPeftZip(id: string): Promise<void>;
  dismissProblem(): void;
}

/** `name`, or "name (2)", "name (3)", ... where the library already has it. */
export function uniqueName(name: string, taken: readonly string[]): string {
  let candidate = name;
  for (let n = 2; taken.includes(candidate); n++) candidate = `${name} (${n})`;
  return candidate;
}

/** The name an adapter downloads as: "Block-LoRA r2" -> "block-lora-r2.octoclip.safetensors". */
export function adapterFileName(name: string): string {
  return `${fileSlug(name)}${ADAPTER_FILE_EXTENSION}`;
}

function withoutExtension(fileName: string): string {
  return fileName.endsWith(ADAPTER_FILE_EXTENSION)
    ? fileName.slice(0, -ADAPTER_FILE_EXTENSION.length)
    : fileName.replace(/\.safetensors$/i, '');
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

  /** Stores an adapter file once the engine has checked it against the loaded model. */
  /** Stores an imported adapter under the name its file records (written on download), else `fallbackName`. */
  async function addImported(file: File, fallbackName: string): Promise<void> {
    const meta = await useEngineStore.getState().request('inspectAdapter', { file, fileName: file.name });
    const taken = get().adapters.map((a) => a.name);
    const name = uniqueName(meta.name ?? fallbackName, taken);
    await get().add({ id: crypto.randomUUID(), name, createdAt: Date.now(), source: 'imported', meta, file });
    set({ notice: `Imported “${name}”.` });
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
        set((state) => ({
          adapters: state.adapters.filter((a) => a.id !== id),
          compared: state.compared.filter((c) => c !== id),
        }));
        if (deleted)
          useUndoStore
            .getState()
            .offerUndo({ message: `Deleted the adapter “${deleted.name}”.`, undo: () => get().add(deleted) });
      });
    },

    async importFile(file) {
      await attempt(() => addImported(file, withoutExtension(file.name) || 'imported adapter'));
    },

    async importPeft(files) {
      await attempt(async () => {
        if (!useModelStore.getState().loaded)
          throw new Error('Load the base model first: a PEFT adapter is converted for the loaded model.');
        const zip = files.length === 1 && /\.zip$/i.test(files[0].name) ? files[0] : null;
        const contents = zip
          ? await readZip(new Uint8Array(await zip.arrayBuffer()))
          : new Map(
              await Promise.all(
                files.map(
                  async (f) => [f.webkitRelativePath || f.name, new Uint8Array(await f.arrayBuffer())] as const,
                ),
              ),
            );
        const adapter = await useEngineStore.getState().request('importPeft', { files: Object.fromEntries(contents) });
        const name =
          (zip ? zip.name.replace(/\.zip$/i, '') : files[0].webkitRelativePath.split('/')[0]) ||
          'imported PEFT adapter';
        await addImported(new File([adapter as Uint8Array<ArrayBuffer>], adapterFileName(name)), name);
      });
    },

    toggleCompared(id) {
      set((state) => ({
        compared: state.compared.includes(id) ? state.compared.filter((c) => c !== id) : [...state.compared, id],
      }));
    },

    async download(id) {
      const record = find(id);
      if (!record) return;
      await attempt(async () => {
        // The file records the name it has here, so that importing it elsewhere keeps the name.
        const file = await useEngineStore
          .getState()
          .request('namedAdapterFile', { file: record.file, name: record.name });
        saveFile(file as Uint8Array<ArrayBuffer>, adapterFileName(record.name));
      });
    },

    async downloadPeftZip(id) {
      const record = find(id);
      if (!record) return;
      await attempt(async () => {
        const slug = `${fileSlug(record.name)}-peft`;
        const files = await useEngineStore
          .getState()
          .request('exportPeft', { file: record.file, name: record.name, folder: slug });
        saveFile(writeZip(files), `${slug}.zip`, 'application/zip');
      });
    },

    async downloadPeft(id, part) {
      const record = find(id);
      if (!record) return;
      await attempt(async () => {
        const files = await useEngineStore
          .getState()
          .request('exportPeft', { file: record.file, name: record.name, folder: fileSlug(record.name) });
        if (part === 'weights') saveFile(files[PEFT_WEIGHTS_FILE] as Uint8Array<ArrayBuffer>, PEFT_WEIGHTS_FILE);
        else saveFile(files[PEFT_CONFIG_FILE] as string, PEFT_CONFIG_FILE, 'application/json');
      });
    },

    dismissProblem() {
      set({ problem: null });
    },
  };
});
