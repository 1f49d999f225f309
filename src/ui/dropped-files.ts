// Files the user drops or picks, with the folders they came in, and how folders become classes:
// a folder with sub-folders gives one class per sub-folder (images anywhere below it); a folder of
// images alone is one class. Files outside any class folder are set aside with the reason. Classes and
// their images are ordered as the CLI's loader orders them (src/node/dataset.ts: code-point order of
// class names, then of paths within a class), so one folder and one seed give the same split in both.

import { compareCodePoints } from '../common/dataset-order';
import type { RejectedFile } from './image-files';

export interface PickedFile {
  file: File;
  /** Folder names from the dropped or picked folder down to the file's own ([] for a loose file). */
  folders: string[];
}

export interface ClassFiles {
  className: string;
  files: File[];
}

/**
 * The files of a drop, folders traversed. Must be called during the drop event: the browser empties
 * the DataTransfer when the event handler returns, so its entries are taken first and read afterwards.
 */
export function filesFromDrop(dataTransfer: DataTransfer): Promise<PickedFile[]> {
  const entries = [...dataTransfer.items]
    .map((item) => item.webkitGetAsEntry())
    .filter((entry): entry is FileSystemEntry => entry !== null);
  if (entries.length === 0) return Promise.resolve([...dataTransfer.files].map((file) => ({ file, folders: [] })));
  return Promise.all(entries.map((entry) => readEntry(entry, []))).then((lists) => lists.flat());
}

/** The files of an <input type="file" webkitdirectory> (their webkitRelativePath holds the folders). */
export function filesFromInput(files: FileList): PickedFile[] {
  return [...files].map((file) => ({ file, folders: file.webkitRelativePath.split('/').slice(0, -1) }));
}

/** Groups picked files into classes by folder; loose files are rejected. */
export function groupIntoClasses(picked: readonly PickedFile[]): { classes: ClassFiles[]; rejected: RejectedFile[] } {
  const byClass = new Map<string, { file: File; key: string }[]>();
  const rejected: RejectedFile[] = [];
  const rootsWithSubfolders = new Set(picked.filter((p) => p.folders.length >= 2).map((p) => p.folders[0]));
  for (const { file, folders } of picked) {
    if (isHidden(file.name)) continue;
    const classDepth = rootsWithSubfolders.has(folders[0]) ? 1 : 0;
    const className = folders[classDepth];
    if (className === undefined) {
      rejected.push({
        name: [...folders, file.name].join('/'),
        reason: 'not inside a class folder: put each class’s images in a folder named after the class',
      });
      continue;
    }
    let files = byClass.get(className);
    if (!files) byClass.set(className, (files = []));
    files.push({ file, key: [...folders.slice(classDepth + 1), file.name].join('/') });
  }
  const classes = [...byClass]
    .sort(([x], [y]) => compareCodePoints(x, y))
    .map(([className, files]) => ({
      className,
      files: files.sort((x, y) => compareCodePoints(x.key, y.key)).map((f) => f.file),
    }));
  return { classes, rejected };
}

/** .DS_Store, Thumbs.db and friends come along with folders; nobody means them as images. */
function isHidden(name: string): boolean {
  return name.startsWith('.') || name === 'Thumbs.db' || name === 'desktop.ini';
}

async function readEntry(entry: FileSystemEntry, folders: string[]): Promise<PickedFile[]> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    return [{ file, folders }];
  }
  if (!entry.isDirectory) return [];
  const children = await readAllEntries((entry as FileSystemDirectoryEntry).createReader());
  const inside = [...folders, entry.name];
  const lists = await Promise.all(children.map((child) => readEntry(child, inside)));
  return lists.flat();
}

/** readEntries answers in batches (100 in Chrome) until it answers an empty one. */
async function readAllEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  const all: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}
