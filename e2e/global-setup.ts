// Writes the end-to-end tests' files: the tiny CLIP (real architecture and file format, small widths),
// a broken copy of it, and a small image set: 3 classes of real digit images when the shared data set
// is there, else generated PNGs with a pattern per class.

import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { makeTinyClip } from '../src/model/tiny';
import { writeModelDirectory } from '../src/node/files';
import {
  BROKEN_MODEL_DIR,
  CORRUPT_IMAGE,
  DATASET_CLASSES,
  DATASET_DIR,
  EXTRA_IMAGES_DIR,
  IMAGES_PER_CLASS,
  NOT_AN_IMAGE,
  TINY_MODEL_DIR,
  TRY_IMAGE,
} from './fixtures';

const SHARED_DIGITS = path.resolve('../shared/data/digits'); // beside the checkout, when present

export default async function globalSetup(): Promise<void> {
  const { files } = makeTinyClip();
  await writeModelDirectory(TINY_MODEL_DIR, files);
  const weights = files['model.safetensors'] as Uint8Array;
  await writeModelDirectory(BROKEN_MODEL_DIR, {
    ...files,
    'model.safetensors': weights.subarray(0, Math.floor(weights.length / 2)),
  });

  await rm(path.dirname(DATASET_DIR), { recursive: true, force: true });
  for (const className of DATASET_CLASSES) {
    const dir = path.join(DATASET_DIR, className);
    await mkdir(dir, { recursive: true });
    const images = await classImages(className, IMAGES_PER_CLASS + 3);
    for (let i = 0; i < IMAGES_PER_CLASS; i++) await writeFile(path.join(dir, `${className}-${i}.png`), images[i]);
    if (className === DATASET_CLASSES[0]) {
      await mkdir(EXTRA_IMAGES_DIR, { recursive: true });
      await writeFile(path.join(EXTRA_IMAGES_DIR, `${className}-extra-0.png`), images[IMAGES_PER_CLASS]);
      await writeFile(path.join(EXTRA_IMAGES_DIR, `${className}-extra-1.png`), images[IMAGES_PER_CLASS + 1]);
      await writeFile(TRY_IMAGE, images[IMAGES_PER_CLASS + 2]);
    }
  }
  // A PNG signature followed by garbage: the browser cannot decode it.
  await writeFile(
    path.join(DATASET_DIR, CORRUPT_IMAGE),
    Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]),
  );
  await writeFile(path.join(DATASET_DIR, NOT_AN_IMAGE), 'Notes about this class, not an image.\n');
}

/** PNG bytes of `count` images of a class. */
async function classImages(className: string, count: number): Promise<Buffer[]> {
  const shared = path.join(SHARED_DIGITS, className);
  if (existsSync(shared)) {
    const names = (await readdir(shared))
      .filter((name) => name.endsWith('.png'))
      .sort()
      .slice(0, count);
    if (names.length === count) return Promise.all(names.map((name) => readFile(path.join(shared, name))));
  }
  // A stripe pattern per class (horizontal, vertical, diagonal) with per-image noise.
  const label = DATASET_CLASSES.indexOf(className);
  return Promise.all(
    Array.from({ length: count }, (_, i) => {
      const size = 16;
      const pixels = Buffer.alloc(size * size * 3);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const stripe = [y, x, x + y][label] % 4 < 2;
          const noise = ((x * 31 + y * 17 + i * 13) % 40) - 20;
          pixels.fill(
            Math.max(0, Math.min(255, (stripe ? 220 : 40) + noise)),
            3 * (y * size + x),
            3 * (y * size + x) + 3,
          );
        }
      }
      return sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toBuffer();
    }),
  );
}
