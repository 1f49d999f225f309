// A labelled image dataset from a folder with one sub-folder per class (torchvision's ImageFolder layout):
//
//   DIR/cat/0001.jpg
//   DIR/cat/more/0002.png      files in nested folders belong to the top-level class folder
//   DIR/dog/a.webp
//
// Classes are the sub-folders' names in code-point order (as Python's sorted(), so labels match
// torchvision's); a class's images are in order of their path below the class folder. Names starting with
// "." (.DS_Store, .git, ...) are ignored.
//
// Decoding: every file is checked once, here, so a bad file is reported up front rather than halfway
// through training; the pixels are not kept (a dataset can be far larger than memory). Callers decode the
// images they need with `decodeImageFile`. `check: 'header'` reads only each file's header instead:
// much faster for big datasets, but damaged pixel data then only shows when the image is decoded.

import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { compareCodePoints } from '../common/dataset-order';
import { decodeImageFile, type DecodeImageOptions, ImageDecodeError, probeImageFile } from './images';

export interface DatasetImage {
  /** Absolute path. */
  path: string;
  /** Index into `classNames`. */
  label: number;
  className: string;
}

export interface SkippedFile {
  /** Absolute path. */
  path: string;
  /** Why, in words, e.g. "not an image (unrecognised format)". */
  reason: string;
}

export interface ImageFolder {
  /** The dataset folder, absolute. */
  root: string;
  classNames: string[];
  /** The usable images: by label, then by path within the class folder. */
  images: DatasetImage[];
  /** Files left out, sorted by path: bad images, and files lying outside any class folder. */
  skipped: SkippedFile[];
}

export interface LoadImageFolderOptions extends DecodeImageOptions {
  /** Called as each file is skipped (in no particular order; `skipped` is sorted). */
  onSkip?: (file: SkippedFile) => void;
  /** Called after each file is checked: `done` of `total`. */
  onProgress?: (done: number, total: number) => void;
  /** 'decode' (default) fully decodes every file once; 'header' reads only headers (see the file comment). */
  check?: 'decode' | 'header';
  /** Files checked at once; default 4 (libuv's thread pool, where sharp works). */
  concurrency?: number;
}

/** The folder cannot be used as a dataset; the message says why and what is expected. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

const DEFAULT_CONCURRENCY = 4;

/** Lists, checks and labels the images of a class-per-sub-folder dataset (see the file comment). */
export async function loadImageFolder(dir: string, options: LoadImageFolderOptions = {}): Promise<ImageFolder> {
  const root = resolve(dir);
  const { onSkip, onProgress, check = 'decode', concurrency = DEFAULT_CONCURRENCY, maxPixels } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);

  const skipped: SkippedFile[] = [];
  const skip = (file: SkippedFile) => {
    skipped.push(file);
    onSkip?.(file);
  };

  const classFolders: { name: string; path: string }[] = [];
  for (const entry of await listVisible(root, dir)) {
    const path = join(root, entry.name);
    const kind = await entryKind(entry, path);
    if (kind === 'directory') classFolders.push({ name: entry.name, path });
    else if (kind === 'file')
      skip({ path, reason: 'outside any class folder (images go in one sub-folder per class)' });
  }
  if (classFolders.length === 0) throw new DatasetError(`expected one sub-folder per class in ${dir}, found none`);
  classFolders.sort((x, y) => compareCodePoints(x.name, y.name));
  const classNames = classFolders.map((folder) => folder.name);

  const candidates: DatasetImage[] = [];
  for (const [label, folder] of classFolders.entries()) {
    const files = (await listFilesRecursively(folder.path)).map((path) => ({ path, key: relative(folder.path, path) }));
    files.sort((x, y) => compareCodePoints(x.key, y.key));
    for (const { path } of files) candidates.push({ path, label, className: folder.name });
  }

  const usable = new Array<boolean>(candidates.length).fill(false);
  let done = 0;
  await forEachConcurrently(candidates.length, concurrency, async (i) => {
    const { path } = candidates[i];
    try {
      if (check === 'header') await probeImageFile(path, { maxPixels });
      else await decodeImageFile(path, { maxPixels });
      usable[i] = true;
    } catch (error) {
      if (!(error instanceof ImageDecodeError)) throw error;
      skip({ path, reason: error.reason });
    }
    onProgress?.(++done, candidates.length);
  });

  const images = candidates.filter((_, i) => usable[i]);
  const filesPerClass = new Array<number>(classNames.length).fill(0);
  const imagesPerClass = new Array<number>(classNames.length).fill(0);
  for (const candidate of candidates) filesPerClass[candidate.label]++;
  for (const image of images) imagesPerClass[image.label]++;
  const emptyClasses = classNames.flatMap((name, label) =>
    imagesPerClass[label] === 0 ? [{ name, files: filesPerClass[label] }] : [],
  );
  if (emptyClasses.length > 0) {
    const why = (files: number) =>
      files === 0 ? 'no files' : files === 1 ? 'its one file was skipped' : `all ${files} files were skipped`;
    const described = emptyClasses.map(({ name, files }) => `"${name}" (${why(files)})`);
    const which = described.length === 1 ? 'this one has' : 'these have';
    throw new DatasetError(
      `every class folder in ${dir} needs at least one image; ${which} none: ${described.join(', ')}`,
    );
  }

  skipped.sort((x, y) => compareCodePoints(x.path, y.path));
  return { root, classNames, images, skipped };
}

async function listVisible(path: string, shownAs: string): Promise<Dirent[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DatasetError(`dataset folder ${shownAs} does not exist`);
    if (code === 'ENOTDIR')
      throw new DatasetError(`${shownAs} is a file: expected a folder with one sub-folder per class`);
    throw new DatasetError(`cannot read ${shownAs}: ${(error as Error).message}`);
  }
  return entries.filter((entry) => !entry.name.startsWith('.'));
}

/** Follows symbolic links; anything else (sockets, broken links) is 'other' and ignored. */
async function entryKind(entry: Dirent, path: string): Promise<'file' | 'directory' | 'other'> {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'directory';
  if (!entry.isSymbolicLink()) return 'other';
  try {
    const target = await stat(path);
    return target.isFile() ? 'file' : target.isDirectory() ? 'directory' : 'other';
  } catch {
    return 'other';
  }
}

/** Every visible file below `folder`; a folder reached twice through links is listed once. */
async function listFilesRecursively(folder: string): Promise<string[]> {
  const files: string[] = [];
  const visited = new Set<string>();
  const walk = async (path: string): Promise<void> => {
    const real = await realpath(path);
    if (visited.has(real)) return;
    visited.add(real);
    for (const entry of await listVisible(path, path)) {
      const child = join(path, entry.name);
      const kind = await entryKind(entry, child);
      if (kind === 'file') files.push(child);
      else if (kind === 'directory') await walk(child);
    }
  };
  await walk(folder);
  return files;
}

/** Runs `task(0 .. count-1)` with at most `limit` running at once; rejects on the first failure. */
async function forEachConcurrently(
  count: number,
  limit: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}
