// Images for the CLI: a class-per-sub-folder dataset (or a flat folder, for embed), decoded to RGBA.
// Bad files are reported on stderr and skipped; the rest are used.

import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RgbaImage } from '../model/preprocessor';
import { loadImageFolder, type SkippedFile } from '../node/dataset';
import { decodeImageFile, ImageDecodeError } from '../node/images';

export interface LabelledImageSet {
  classNames: string[];
  images: RgbaImage[];
  labels: number[];
  paths: string[];
  skipped: SkippedFile[];
}

function report(file: SkippedFile): void {
  process.stderr.write(`skipped ${file.path}: ${file.reason}\n`);
}

/** Decodes a dataset folder; with `flat`, a folder of images without classes is accepted too. */
export async function loadLabelledImages(dir: string, options: { flat?: boolean } = {}): Promise<LabelledImageSet> {
  if (options.flat) {
    const entries = await readdir(dir, { withFileTypes: true });
    if (!entries.some((e) => e.isDirectory()))
      return loadFlatFolder(
        dir,
        entries.filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name),
      );
  }
  const folder = await loadImageFolder(dir, { onSkip: report, check: 'header' });
  const set: LabelledImageSet = {
    classNames: folder.classNames,
    images: [],
    labels: [],
    paths: [],
    skipped: [...folder.skipped],
  };
  for (const image of folder.images) {
    try {
      set.images.push(await decodeImageFile(image.path));
      set.labels.push(image.label);
      set.paths.push(image.path);
    } catch (error) {
      if (!(error instanceof ImageDecodeError)) throw error;
      const file = { path: image.path, reason: error.reason };
      report(file);
      set.skipped.push(file);
    }
  }
  return set;
}

async function loadFlatFolder(dir: string, names: string[]): Promise<LabelledImageSet> {
  const set: LabelledImageSet = { classNames: [], images: [], labels: [], paths: [], skipped: [] };
  for (const name of names.sort()) {
    const path = resolve(join(dir, name));
    try {
      set.images.push(await decodeImageFile(path));
      set.paths.push(path);
      set.labels.push(-1);
    } catch (error) {
      if (!(error instanceof ImageDecodeError)) throw error;
      const file = { path, reason: error.reason };
      report(file);
      set.skipped.push(file);
    }
  }
  return set;
}
