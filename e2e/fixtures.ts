// Where the end-to-end tests' files are (written by global-setup.ts before any test runs), and the
// expectations that follow from them.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.cache');

/** Where Playwright's web server builds the studio (not dist/, which `npm run build` owns). */
export const BUILD_DIR = path.join(CACHE, 'e2e-dist');

/** The tiny CLIP's files, in the Hub's layout. */
export const TINY_MODEL_DIR = path.join(CACHE, 'e2e-models', 'tiny');
/** The same model with model.safetensors cut short, as an interrupted copy would be. */
export const BROKEN_MODEL_DIR = path.join(CACHE, 'e2e-models', 'broken');
export const MODEL_FILE_NAMES = [
  'config.json',
  'model.safetensors',
  'vocab.json',
  'merges.txt',
  'preprocessor_config.json',
];

/** A dataset folder with one sub-folder per class, plus a corrupt image and a text file to be skipped. */
export const DATASET_DIR = path.join(CACHE, 'e2e-data', 'digits');
export const DATASET_CLASSES = ['one', 'two', 'zero'];
export const IMAGES_PER_CLASS = 8;
export const CORRUPT_IMAGE = 'zero/corrupt.png';
export const NOT_AN_IMAGE = 'one/notes.txt';
/** Two more images of the first class, to drop onto its class card. */
export const EXTRA_IMAGES_DIR = path.join(CACHE, 'e2e-data', 'extra');
/** An image to try the adapter on. */
export const TRY_IMAGE = path.join(EXTRA_IMAGES_DIR, 'try.png');

/** The repo id the Hub tests download (served from TINY_MODEL_DIR by page.route). */
export const HUB_REPO = 'octoclip-tests/tiny-clip';
