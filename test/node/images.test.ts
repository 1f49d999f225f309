import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImageFile, DEFAULT_MAX_PIXELS, ImageDecodeError, probeImageFile } from '../../src/node/images';
import {
  BROKEN_FIXTURES,
  IMAGE_FIXTURES,
  writeHugeHeaderPng,
  writeRotatedJpeg,
  writeSolidPng,
} from '../fixtures/images/generate';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'octoclip-images-'));
  for (const fixture of [...IMAGE_FIXTURES, ...BROKEN_FIXTURES]) await fixture.write(join(dir, fixture.name));
  await writeRotatedJpeg(join(dir, 'rotated.jpg'));
  await writeSolidPng(join(dir, 'solid-16x16.png'), 16, 16);
  await writeHugeHeaderPng(join(dir, 'huge.png'), 30_000, 30_000);
  await mkdir(join(dir, 'a-folder.png'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Resolves to the ImageDecodeError the promise rejects with (and fails the test otherwise). */
async function decodeError(promise: Promise<unknown>): Promise<ImageDecodeError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageDecodeError);
  return error as ImageDecodeError;
}

describe('decodeImageFile', () => {
  for (const fixture of IMAGE_FIXTURES) {
    it(`decodes ${fixture.name} to 8-bit sRGB RGBA`, async () => {
      const image = await decodeImageFile(join(dir, fixture.name));
      expect([image.width, image.height]).toEqual([fixture.width, fixture.height]);
      expect(image.rgba).toBeInstanceOf(Uint8Array);
      expect(image.rgba.length).toBe(fixture.width * fixture.height * 4);
      // The result owns its whole buffer, so it can be transferred to a worker.
      expect(image.rgba.byteOffset).toBe(0);
      expect(image.rgba.buffer.byteLength).toBe(image.rgba.length);
      const worst = Math.max(...Array.from(image.rgba, (value, i) => Math.abs(value - fixture.expected[i])));
      expect(
        worst,
        `largest channel difference from ${Array.from(fixture.expected)}: got ${Array.from(image.rgba)}`,
      ).toBeLessThanOrEqual(fixture.tolerance);
    });
  }

  it('applies the EXIF orientation', async () => {
    // Stored 32 x 16, red left, blue right; orientation 6 shows it rotated 90 degrees clockwise: red on top.
    const image = await decodeImageFile(join(dir, 'rotated.jpg'));
    expect([image.width, image.height]).toEqual([16, 32]);
    const pixel = (x: number, y: number) => Array.from(image.rgba.subarray((y * 16 + x) * 4, (y * 16 + x) * 4 + 4));
    const near = (actual: number[], expected: number[]) => actual.every((v, i) => Math.abs(v - expected[i]) <= 8);
    expect(near(pixel(8, 4), [255, 0, 0, 255]), `top ${pixel(8, 4)}`).toBe(true);
    expect(near(pixel(8, 27), [0, 0, 255, 255]), `bottom ${pixel(8, 27)}`).toBe(true);
  });

  for (const broken of BROKEN_FIXTURES) {
    it(`reports ${broken.name} as ${broken.problem}, naming the file`, async () => {
      const path = join(dir, broken.name);
      const error = await decodeError(decodeImageFile(path));
      expect(error.problem).toBe(broken.problem);
      expect(error.path).toBe(path);
      expect(error.reason).toMatch(broken.reason);
      expect(error.message).toBe(`${path}: ${error.reason}`);
    });
  }

  it('refuses an image over the pixel limit from its header alone', async () => {
    // 30,000 x 30,000 would be 3.6 GB as RGBA: the header check answers without allocating it.
    const path = join(dir, 'huge.png');
    const error = await decodeError(decodeImageFile(path));
    expect(error.problem).toBe('too-large');
    expect(error.message).toBe(
      `${path}: image too large (30000 x 30000, limit ${DEFAULT_MAX_PIXELS.toLocaleString('en-US')} pixels)`,
    );
  });

  it('takes a smaller pixel limit as an option', async () => {
    const path = join(dir, 'solid-16x16.png');
    expect((await decodeImageFile(path, { maxPixels: 256 })).width).toBe(16);
    const error = await decodeError(decodeImageFile(path, { maxPixels: 255 }));
    expect(error.reason).toBe('image too large (16 x 16, limit 255 pixels)');
  });

  it('reports a missing file and a folder as unreadable', async () => {
    const missing = await decodeError(decodeImageFile(join(dir, 'no-such-file.png')));
    expect(missing.problem).toBe('unreadable');
    expect(missing.message).toContain('no-such-file.png: cannot read file (no such file)');
    const folder = await decodeError(decodeImageFile(join(dir, 'a-folder.png')));
    expect(folder.problem).toBe('unreadable');
    expect(folder.message).toContain('a-folder.png');
  });
});

describe('probeImageFile', () => {
  it('gives the format and the displayed size from the header', async () => {
    expect(await probeImageFile(join(dir, 'rgb.png'))).toEqual({ format: 'png', width: 3, height: 2 });
    expect(await probeImageFile(join(dir, 'rotated.jpg'))).toEqual({ format: 'jpeg', width: 16, height: 32 });
    expect(await probeImageFile(join(dir, 'rgba.avif'))).toEqual({ format: 'heif', width: 3, height: 2 });
  });

  it('refuses what a header shows is unusable, but not damaged pixel data', async () => {
    expect((await decodeError(probeImageFile(join(dir, 'notes.png')))).problem).toBe('unrecognised');
    expect((await decodeError(probeImageFile(join(dir, 'empty.png')))).problem).toBe('empty');
    expect((await decodeError(probeImageFile(join(dir, 'huge.png')))).problem).toBe('too-large');
    expect((await decodeError(probeImageFile(join(dir, 'drawing.svg')))).problem).toBe('unsupported');
    await expect(probeImageFile(join(dir, 'truncated.png'))).resolves.toMatchObject({ format: 'png' });
  });
});
