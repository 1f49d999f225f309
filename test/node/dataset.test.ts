import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetError, loadImageFolder, type SkippedFile } from '../../src/node/dataset';
import { decodeImageFile } from '../../src/node/images';
import { BROKEN_FIXTURES, IMAGE_FIXTURES, writeSolidPng, writeTree } from '../fixtures/images/generate';

const DIGITS = resolve('../shared/data/digits'); // the project's shared data sits beside the checkout

let root: string;
const png = (rgb: [number, number, number]) => (path: string) => writeSolidPng(path, 4, 4, rgb);
const broken = (name: string) => BROKEN_FIXTURES.find((fixture) => fixture.name === name)!.write;
const image = (name: string) => IMAGE_FIXTURES.find((fixture) => fixture.name === name)!.write;
const text = (content: string) => (path: string) => writeFile(path, content);

/** A fresh folder under the test's temporary root. */
async function tree(name: string, files: Record<string, (path: string) => Promise<void>>): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeTree(dir, files);
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'octoclip-dataset-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('loadImageFolder', () => {
  it('labels sub-folders in sorted order, skips bad files with the reason and keeps the rest', async () => {
    const dir = await tree('pets', {
      'dog/b.png': png([1, 2, 3]),
      'dog/a.jpg': image('rgb.jpg'),
      'dog/truncated.png': broken('truncated.png'),
      'dog/notes.txt': text('not an image'),
      'dog/.DS_Store': text('hidden files are ignored'),
      'cat/nested/deeper.webp': image('rgba.webp'),
      'cat/z.gif': image('animated.gif'),
      'cat/empty.png': broken('empty.png'),
      'Zebra_fish/x.tiff': image('rgb.tiff'),
      '.cache/ignored.png': png([9, 9, 9]),
      'README.md': text('# my dataset'),
    });
    const reported: SkippedFile[] = [];
    const progress: number[] = [];
    const dataset = await loadImageFolder(dir, {
      onSkip: (file) => reported.push(file),
      onProgress: (done) => progress.push(done),
    });

    // Code-point order: upper case sorts before lower case, as Python's sorted() and torchvision do.
    expect(dataset.classNames).toEqual(['Zebra_fish', 'cat', 'dog']);
    expect(dataset.root).toBe(dir);
    expect(dataset.images).toEqual([
      { path: join(dir, 'Zebra_fish/x.tiff'), label: 0, className: 'Zebra_fish' },
      { path: join(dir, 'cat/nested/deeper.webp'), label: 1, className: 'cat' },
      { path: join(dir, 'cat/z.gif'), label: 1, className: 'cat' },
      { path: join(dir, 'dog/a.jpg'), label: 2, className: 'dog' },
      { path: join(dir, 'dog/b.png'), label: 2, className: 'dog' },
    ]);
    expect(dataset.skipped).toEqual([
      { path: join(dir, 'README.md'), reason: 'outside any class folder (images go in one sub-folder per class)' },
      { path: join(dir, 'cat/empty.png'), reason: 'empty file' },
      { path: join(dir, 'dog/notes.txt'), reason: 'not an image (unrecognised format)' },
      { path: join(dir, 'dog/truncated.png'), reason: expect.stringMatching(/^corrupt or truncated image/) },
    ]);
    expect([...reported].sort((x, y) => (x.path < y.path ? -1 : 1))).toEqual(dataset.skipped);
    // The eight visible files inside class folders were checked.
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // The kept files decode.
    for (const { path } of dataset.images) await expect(decodeImageFile(path)).resolves.toBeDefined();
  });

  it("with check: 'header' reads only headers: damaged pixel data is not caught", async () => {
    const dir = await tree('header-only', {
      'a/good.png': png([5, 5, 5]),
      'a/truncated.png': broken('truncated.png'),
      'a/notes.png': broken('notes.png'),
    });
    const dataset = await loadImageFolder(dir, { check: 'header' });
    expect(dataset.images.map((entry) => entry.path)).toEqual([join(dir, 'a/good.png'), join(dir, 'a/truncated.png')]);
    expect(dataset.skipped).toEqual([{ path: join(dir, 'a/notes.png'), reason: 'not an image (unrecognised format)' }]);
  });

  it('follows symbolic links to class folders and files', async () => {
    const elsewhere = await tree('elsewhere', { 'one.png': png([1, 1, 1]), 'two.png': png([2, 2, 2]) });
    const dir = await tree('linked', { 'real/x.png': png([3, 3, 3]) });
    await symlink(elsewhere, join(dir, 'linked_class'));
    await symlink(join(elsewhere, 'one.png'), join(dir, 'real/y.png'));
    const dataset = await loadImageFolder(dir);
    expect(dataset.classNames).toEqual(['linked_class', 'real']);
    expect(dataset.images.map((entry) => [entry.className, entry.path.slice(dir.length + 1)])).toEqual([
      ['linked_class', 'linked_class/one.png'],
      ['linked_class', 'linked_class/two.png'],
      ['real', 'real/x.png'],
      ['real', 'real/y.png'],
    ]);
  });

  it('refuses a folder without class sub-folders', async () => {
    const dir = await tree('flat', { 'a.png': png([1, 1, 1]), 'b.png': png([2, 2, 2]) });
    await expect(loadImageFolder(dir)).rejects.toThrow(
      new DatasetError(`expected one sub-folder per class in ${dir}, found none`),
    );
    const empty = await tree('nothing', {});
    await expect(loadImageFolder(empty)).rejects.toThrow(`expected one sub-folder per class in ${empty}`);
  });

  it('refuses empty class folders, and folders whose every file is bad, naming them', async () => {
    const dir = await tree('gaps', {
      'ok/a.png': png([1, 1, 1]),
      'all_bad/notes.txt': text('x'),
      'all_bad/.hidden.png': png([1, 1, 1]),
    });
    await mkdir(join(dir, 'empty'));
    await expect(loadImageFolder(dir)).rejects.toThrow(
      `every class folder in ${dir} needs at least one image; these have none: "all_bad" (its one file was skipped), "empty" (no files)`,
    );
  });

  it('says when the folder does not exist or is a file', async () => {
    await expect(loadImageFolder(join(root, 'missing'))).rejects.toThrow(
      `dataset folder ${join(root, 'missing')} does not exist`,
    );
    const file = join(root, 'a-file');
    await writeFile(file, 'x');
    await expect(loadImageFolder(file)).rejects.toThrow(DatasetError);
  });

  it.skipIf(!existsSync(DIGITS))('loads the digits dataset (10 classes, 1,797 8 x 8 grayscale PNGs)', async () => {
    const dataset = await loadImageFolder(DIGITS);
    expect(dataset.classNames).toEqual([
      'eight',
      'five',
      'four',
      'nine',
      'one',
      'seven',
      'six',
      'three',
      'two',
      'zero',
    ]);
    expect(dataset.images).toHaveLength(1797);
    expect(dataset.skipped).toEqual([]);
    const perClass = dataset.classNames.map(
      (_, label) => dataset.images.filter((entry) => entry.label === label).length,
    );
    expect(Math.min(...perClass)).toBeGreaterThanOrEqual(170);
    const first = await decodeImageFile(dataset.images[0].path);
    expect([first.width, first.height, first.rgba.length]).toEqual([8, 8, 256]);
    // Grayscale: R = G = B, opaque.
    for (let i = 0; i < 64; i++) {
      const [r, g, b, a] = first.rgba.subarray(i * 4, i * 4 + 4);
      expect([g, b, a]).toEqual([r, r, 255]);
    }
  });
  if (!existsSync(DIGITS)) console.info(`dataset.test: ${DIGITS} is absent, the digits dataset test is skipped`);
});
