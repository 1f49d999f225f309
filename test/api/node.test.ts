// The library API in Node (src/api/node.ts): a tiny model, an adapter written for it, images as paths and bytes.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier, type Classifier, type NodeImage } from '../../src/api/node';
import type { ClipModel } from '../../src/model/clip';
import { classEmbeddings, classify } from '../../src/model/zero-shot';
import { makeTinyClip } from '../../src/model/tiny';
import { writeModelDirectory } from '../../src/node/files';
import { decodeImageFile } from '../../src/node/images';
import { randomAdapterFile } from '../helpers/random-adapter';

const work = mkdtempSync(join(tmpdir(), 'octoclip-api-'));
const model = join(work, 'tiny');
const adapterPath = join(work, 'shapes.octoclip.safetensors');
const imagePath = join(work, 'orange.png');
const classNames = ['circle', 'square', 'triangle'];
let classifier: Classifier<NodeImage>;

beforeAll(async () => {
  await writeModelDirectory(model, makeTinyClip({ seed: 2 }).files);
  await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 240, g: 140, b: 20 } } })
    .png()
    .toFile(imagePath);
  writeFileSync(
    adapterPath,
    randomAdapterFile(model, makeTinyClip({ seed: 2 }).files, classNames, { template: 'a drawing of a {}.' }),
  );
  classifier = await loadClassifier({ model, adapter: adapterPath });
}, 300_000);

afterAll(() => classifier?.dispose());

describe('loadClassifier (Node)', () => {
  it("classifies with the adapter's classes and prompt, as the engine does, most probable first", async () => {
    expect(classifier.classNames).toEqual(classNames);
    expect(classifier.template).toBe('a drawing of a {}.');
    const result = await classifier.classify(imagePath);
    expect(result.map((r) => r.className).sort()).toEqual(classNames);
    expect(result.reduce((sum, r) => sum + r.probability, 0)).toBeCloseTo(1, 5);
    for (let i = 1; i < result.length; i++)
      expect(result[i - 1].probability).toBeGreaterThanOrEqual(result[i].probability);

    // Zero-shot through the API differs from the adapted result, and equals the engine's own zero-shot.
    const zeroShot = await loadClassifier({ model, classes: classNames, template: 'a drawing of a {}.' });
    try {
      const plain = await zeroShot.classify(imagePath);
      const byName = (list: typeof plain) => Object.fromEntries(list.map((r) => [r.className, r.probability]));
      const engine = (zeroShot as unknown as { model: ClipModel }).model;
      const [expected] = await classify(
        engine,
        [await decodeImageFile(imagePath)],
        await classEmbeddings(engine, classNames, ['a drawing of a {}.']),
      );
      classNames.forEach((name, c) => expect(byName(plain)[name]).toBeCloseTo(expected.probabilities[c], 6));
      expect(
        Math.max(...classNames.map((name) => Math.abs(byName(plain)[name] - byName(result)[name]))),
      ).toBeGreaterThan(1e-4);
    } finally {
      zeroShot.dispose();
    }
  });

  it('takes images as paths or bytes, and embeds texts', async () => {
    const [fromPath, fromBytes] = await classifier.embedImages([imagePath, new Uint8Array(readFileSync(imagePath))]);
    expect(fromPath.length).toBe(24);
    expect(fromBytes).toEqual(fromPath);
    const texts = await classifier.embedTexts(['a drawing of a circle.', 'a dog']);
    expect(texts.map((t) => t.length)).toEqual([24, 24]);
    expect(texts[0]).not.toEqual(texts[1]);
  });

  it('refuses an adapter for another base model, bytes that are not an image, and classes with an adapter', async () => {
    const other = join(work, 'other');
    await writeModelDirectory(other, makeTinyClip({ seed: 3 }).files);
    await expect(loadClassifier({ model: other, adapter: adapterPath })).rejects.toThrow(
      /was trained on .*load .* to use it/,
    );
    await expect(classifier.classify(new TextEncoder().encode('not an image'))).rejects.toThrow(/not an image/);
    await expect(loadClassifier({ model, adapter: readFileSync(adapterPath), classes: ['a', 'b'] })).rejects.toThrow(
      /classes are for use without an adapter/,
    );
  });
});
