// A whole workspace in one file, to move it to another browser or machine: the dataset (classes and
// images), the adapter library and the studio's settings. Models are not in it: they are large, and
// come again from the Hub or their files.
//
// The file is laid out like safetensors: a magic line, the header's length (u64, little-endian), a JSON
// header, then the Blobs one after another; the header names each Blob by its byte range. Writing
// concatenates Blobs and reading slices them, so a workspace of any size is never copied into memory.

import type { AdapterMetadata } from '../adapters/adapter-file';
import { studioDatabase, write, type AdapterRecord, type ClassRecord, type ImageRecord } from './db';

export const WORKSPACE_FILE_EXTENSION = '.octoclip-workspace';
const MAGIC = 'octoclip workspace\n';
const FORMAT_VERSION = 1;
const PREFIX_BYTES = MAGIC.length + 8;

/** Everything a workspace file holds. */
export interface Workspace {
  classes: ClassRecord[];
  images: ImageRecord[];
  adapters: AdapterRecord[];
  /** The dataset's prompt template (absent: none was stored, the recipe's applies). */
  promptTemplate?: string;
  /** The studio's settings, by their localStorage key: opaque to storage. */
  settings: Record<string, string>;
}

/** Where a Blob is in the file's data section, and its MIME type. */
interface BlobRef {
  offset: number;
  length: number;
  type: string;
}

interface WorkspaceHeader {
  version: number;
  createdAt: number;
  classes: ClassRecord[];
  images: (Omit<ImageRecord, 'blob' | 'thumbnail'> & { blob: BlobRef; thumbnail: BlobRef })[];
  adapters: (Omit<AdapterRecord, 'file'> & { file: BlobRef })[];
  promptTemplate?: string;
  settings: Record<string, string>;
}

/** The file is not a workspace, or is damaged: the message says what is wrong. Nothing was imported. */
export class WorkspaceFileError extends Error {
  override name = 'WorkspaceFileError';

  constructor(fileName: string, reason: string) {
    super(`${fileName} is not an octoclip workspace file: ${reason}. Nothing was imported.`);
  }
}

/** The workspace as one Blob, in the layout above. */
export function encodeWorkspace(workspace: Workspace, createdAt = Date.now()): Blob {
  const blobs: Blob[] = [];
  let offset = 0;
  const ref = (blob: Blob): BlobRef => {
    blobs.push(blob);
    const result = { offset, length: blob.size, type: blob.type };
    offset += blob.size;
    return result;
  };
  const header: WorkspaceHeader = {
    version: FORMAT_VERSION,
    createdAt,
    classes: workspace.classes,
    images: workspace.images.map((image) => ({ ...image, blob: ref(image.blob), thumbnail: ref(image.thumbnail) })),
    adapters: workspace.adapters.map((adapter) => ({ ...adapter, file: ref(adapter.file) })),
    promptTemplate: workspace.promptTemplate,
    settings: workspace.settings,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(json.length), true);
  return new Blob([MAGIC, length, json, ...blobs], { type: 'application/octet-stream' });
}

/** Reads a workspace file, checking every part of it first; throws a WorkspaceFileError saying what is wrong. */
export async function decodeWorkspace(file: Blob, fileName: string): Promise<Workspace> {
  const refuse = (reason: string): never => {
    throw new WorkspaceFileError(fileName, reason);
  };
  const prefix = new Uint8Array(await file.slice(0, PREFIX_BYTES).arrayBuffer());
  const start = new TextDecoder().decode(prefix.subarray(0, MAGIC.length));
  if (!MAGIC.startsWith(start) || start.length === 0) refuse('it does not start with “octoclip workspace”');
  if (file.size < PREFIX_BYTES)
    refuse(`it is cut short (${file.size} bytes, fewer than a workspace file's own header)`);
  const headerBytes = new DataView(prefix.buffer).getBigUint64(MAGIC.length, true);
  if (headerBytes > BigInt(file.size - PREFIX_BYTES))
    refuse('it is cut short (the header runs past the end of the file)');
  const dataStart = PREFIX_BYTES + Number(headerBytes);
  let header: WorkspaceHeader;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(await file.slice(PREFIX_BYTES, dataStart).arrayBuffer()),
    );
  } catch {
    return refuse('its header is not valid JSON');
  }
  if (!isObject(header) || header.version !== FORMAT_VERSION) {
    refuse(
      `it is format version ${isObject(header) ? String(header.version) : 'unknown'}, and this studio reads version ${FORMAT_VERSION}`,
    );
  }
  const dataBytes = file.size - dataStart;
  const blob = (ref: unknown, what: string): Blob => {
    const { offset, length, type } = (isObject(ref) ? ref : {}) as Partial<BlobRef>;
    if (!isCount(offset) || !isCount(length) || typeof type !== 'string')
      return refuse(`the header's entry for ${what} is malformed`);
    if (offset + length > dataBytes) return refuse(`${what} runs past the end of the file (it is cut short)`);
    return file.slice(dataStart + offset, dataStart + offset + length, type);
  };
  const list = <T>(value: unknown, what: string): T[] =>
    Array.isArray(value) ? value : refuse(`the header has no list of ${what}`);
  const classes = list<ClassRecord>(header.classes, 'classes');
  for (const record of classes) {
    const badPrompt = isObject(record) && record.prompt !== undefined && typeof record.prompt !== 'string';
    if (
      !isObject(record) ||
      typeof record.id !== 'string' ||
      typeof record.name !== 'string' ||
      typeof record.position !== 'number' ||
      badPrompt
    ) {
      refuse('a class in the header is malformed');
    }
  }
  const classIds = new Set(classes.map((c) => c.id));
  const images = list<WorkspaceHeader['images'][number]>(header.images, 'images').map((image): ImageRecord => {
    if (
      !isObject(image) ||
      typeof image.id !== 'string' ||
      typeof image.name !== 'string' ||
      !classIds.has(image.classId)
    ) {
      refuse('an image in the header is malformed or belongs to no class');
    }
    return {
      ...image,
      blob: blob(image.blob, `the image ${image.name}`),
      thumbnail: blob(image.thumbnail, `the thumbnail of ${image.name}`),
    };
  });
  const adapters = list<WorkspaceHeader['adapters'][number]>(header.adapters, 'adapters').map(
    (adapter): AdapterRecord => {
      if (
        !isObject(adapter) ||
        typeof adapter.id !== 'string' ||
        typeof adapter.name !== 'string' ||
        !isObject(adapter.meta)
      ) {
        refuse('an adapter in the header is malformed');
      }
      return {
        ...adapter,
        meta: adapter.meta as AdapterMetadata,
        file: blob(adapter.file, `the adapter ${adapter.name}`),
      };
    },
  );
  const settings = isObject(header.settings) ? header.settings : refuse('the header has no settings');
  if (Object.values(settings).some((value) => typeof value !== 'string')) refuse('a setting in the header is not text');
  const { promptTemplate } = header;
  if (promptTemplate !== undefined && typeof promptTemplate !== 'string')
    refuse('the prompt template in the header is not text');
  return { classes, images, adapters, ...(promptTemplate !== undefined && { promptTemplate }), settings };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** The stored dataset and adapter library (settings are the UI's: it adds them). */
export async function readStoredWorkspace(): Promise<Omit<Workspace, 'settings'>> {
  const db = await studioDatabase();
  const tx = db.transaction(['classes', 'images', 'adapters', 'datasetSettings']);
  const [classes, images, adapters, datasetSettings] = await Promise.all([
    tx.objectStore('classes').getAll(),
    tx.objectStore('images').getAll(),
    tx.objectStore('adapters').getAll(),
    tx.objectStore('datasetSettings').get('dataset'),
  ]);
  await tx.done;
  return { classes, images, adapters, ...(datasetSettings && { promptTemplate: datasetSettings.promptTemplate }) };
}

/** What an import added, for the status line. */
export interface WorkspaceImportCounts {
  classes: number;
  images: number;
  adapters: number;
}

/**
 * Adds a workspace to what is stored, in one transaction, losing nothing on either side: a class whose
 * name is already here receives the imported images (after the existing classes, in the file's order);
 * images and adapters already here (the same id: a file imported twice) are not added again. Prompts
 * fill gaps only: the file's template when none is stored here, a class's prompt when its class here has none.
 */
export async function importWorkspace(workspace: Omit<Workspace, 'settings'>): Promise<WorkspaceImportCounts> {
  return write(['classes', 'images', 'adapters', 'datasetSettings'], async (tx) => {
    const settingsStore = tx.objectStore('datasetSettings');
    if (workspace.promptTemplate !== undefined && !(await settingsStore.get('dataset'))) {
      await settingsStore.put({ id: 'dataset', promptTemplate: workspace.promptTemplate });
    }
    const classStore = tx.objectStore('classes');
    const imageStore = tx.objectStore('images');
    const adapterStore = tx.objectStore('adapters');
    const existing = await classStore.getAll();
    const byName = new Map(existing.map((c) => [c.name, c.id]));
    let position = Math.max(-1, ...existing.map((c) => c.position)) + 1;
    const classIds = new Map<string, string>();
    const counts = { classes: 0, images: 0, adapters: 0 };
    for (const record of [...workspace.classes].sort((a, b) => a.position - b.position)) {
      const here = byName.get(record.name);
      if (here) {
        classIds.set(record.id, here);
        const kept = await classStore.get(here);
        if (kept && kept.prompt === undefined && record.prompt !== undefined)
          await classStore.put({ ...kept, prompt: record.prompt });
        continue;
      }
      const id = (await classStore.get(record.id)) ? crypto.randomUUID() : record.id;
      await classStore.add({
        id,
        name: record.name,
        position: position++,
        ...(record.prompt !== undefined && { prompt: record.prompt }),
      });
      byName.set(record.name, id);
      classIds.set(record.id, id);
      counts.classes++;
    }
    for (const image of workspace.images) {
      if (await imageStore.getKey(image.id)) continue;
      await imageStore.add({ ...image, classId: classIds.get(image.classId)! });
      counts.images++;
    }
    for (const adapter of workspace.adapters) {
      if (await adapterStore.getKey(adapter.id)) continue;
      await adapterStore.add(adapter);
      counts.adapters++;
    }
    return counts;
  });
}
