// A dataset of 100 classes x 20 images (16 shots and 4 held out each), generated here: adding the
// folder shows classes as they are stored, every screen stays quick and readable (the confusion
// matrix becomes the most confused pairs with the full matrix as CSV, Try it lists classes by
// probability), and the times and memory are printed.

import { expect, test } from '@playwright/test';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { TINY_MODEL_DIR } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { horizontalOverflow, pageMemory, timeToScreen } from './measure';
import { classCard, loadTinyModel, openSection } from './steps';

const CLASSES = 100;
const IMAGES_PER_CLASS = 20;
const SHOTS = 16;
const MANY_DIR = path.join(path.dirname(path.dirname(TINY_MODEL_DIR)), 'e2e-data', 'many-classes');
const className = (c: number) => `object_${String(c).padStart(3, '0')}`;

/** 16 x 16 PNGs: a colour per class (hue around the wheel) with noise per image. */
async function writeManyClasses(): Promise<void> {
  if (existsSync(path.join(MANY_DIR, className(CLASSES - 1), `${IMAGES_PER_CLASS - 1}.png`))) return;
  for (let c = 0; c < CLASSES; c++) {
    const dir = path.join(MANY_DIR, className(c));
    await mkdir(dir, { recursive: true });
    const [r, g, b] = [0, 2, 4].map((phase) => Math.round(127 + 120 * Math.sin((2 * Math.PI * c) / CLASSES + phase)));
    for (let i = 0; i < IMAGES_PER_CLASS; i++) {
      const pixels = Buffer.alloc(16 * 16 * 3);
      for (let p = 0; p < 16 * 16; p++) {
        const noise = ((p * 37 + i * 101 + c * 13) % 31) - 15;
        pixels[3 * p] = Math.max(0, Math.min(255, r + noise));
        pixels[3 * p + 1] = Math.max(0, Math.min(255, g - noise));
        pixels[3 * p + 2] = Math.max(0, Math.min(255, b + noise));
      }
      await writeFile(
        path.join(dir, `${i}.png`),
        await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
          .png()
          .toBuffer(),
      );
    }
  }
}

test('100 classes x 20 images: added class by class, quick screens, confused pairs, CSV, Try it by probability', async ({
  page,
}, testInfo) => {
  test.setTimeout(600_000);
  const errors = collectErrors(page);
  await writeManyClasses();
  await loadTinyModel(page);

  // Adding the folder: classes appear while the progress bar still runs.
  await page.goto('/#/dataset');
  await page.evaluate(() => {
    const samples: { cards: number; adding: boolean }[] = [];
    (window as unknown as { samples: typeof samples }).samples = samples;
    setInterval(
      () =>
        samples.push({
          cards: document.querySelectorAll('.class-card').length,
          adding: !!document.querySelector('[role="progressbar"]'),
        }),
      50,
    );
  });
  const started = Date.now();
  await page.getByLabel('Choose a folder').setInputFiles(MANY_DIR);
  await expect(page.getByRole('article', { name: /^Class / })).toHaveCount(CLASSES, { timeout: 300_000 });
  await expect(page.getByRole('progressbar', { name: 'Adding images' })).toHaveCount(0);
  const loadSeconds = (Date.now() - started) / 1000;
  const samples = await page.evaluate(
    () => (window as unknown as { samples: { cards: number; adding: boolean }[] }).samples,
  );
  expect(samples.some((s) => s.adding && s.cards > 0 && s.cards < CLASSES)).toBe(true);
  // At the default 4 shots, until the Train screen asks for 16.
  await expect(page.getByTestId('split-summary')).toHaveText(
    `${CLASSES * 4} images train, ${CLASSES * (IMAGES_PER_CLASS - 4)} are held out for evaluation.`,
  );
  console.log(
    `[scale] ${CLASSES * IMAGES_PER_CLASS} images in ${CLASSES} classes added in ${loadSeconds.toFixed(1)} s (${((1000 * loadSeconds) / (CLASSES * IMAGES_PER_CLASS)).toFixed(1)} ms per image)`,
  );

  // An edit to one class stays quick with 100 cards on the page.
  const field = page.getByRole('textbox', { name: `Name of class ${className(0)}` });
  const renameStarted = Date.now();
  await field.fill('first_object');
  await field.press('Enter');
  await expect(classCard(page, 'first_object')).toBeVisible();
  console.log(`[scale] rename with ${CLASSES} classes shown: ${Date.now() - renameStarted} ms`);
  await openSection(page, 'Train');
  console.log(
    `[scale] Dataset screen (${CLASSES * IMAGES_PER_CLASS} images) shown in ${await timeToScreen(page, 'Dataset')} ms; ${JSON.stringify(await pageMemory(page))}`,
  );
  for (const width of [1280, 400]) {
    await page.setViewportSize({ width, height: 800 });
    await saveScreen(page, testInfo, `scale-${width}-dataset`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });

  // A short run on all 100 classes; its evaluation on the 400 held-out images opens Evaluate.
  await openSection(page, 'Train');
  await page.getByLabel('Shots per class').fill(String(SHOTS));
  await page.getByLabel('Iterations').fill('2');
  await expect(page.getByTestId('time-estimate')).toContainText('for 2 steps', { timeout: 120_000 });
  await page.getByRole('button', { name: 'Start training' }).click();
  const run = page.getByRole('article', { name: 'Training run' });
  await expect(run).toBeInViewport();
  await expect(run.getByText('Finished', { exact: true })).toBeVisible({ timeout: 400_000 });

  for (const width of [1280, 400]) {
    await page.setViewportSize({ width, height: 800 });
    console.log(`[scale] ${width} px Evaluate shown in ${await timeToScreen(page, 'Evaluate')} ms`);
    await expect(
      page.getByRole('list', { name: 'Most confused pairs' }).or(page.getByText('No confusions')),
    ).toBeVisible();
    await expect(page.getByRole('table', { name: 'Confusion matrix' })).toHaveCount(0);
    const overflow = await horizontalOverflow(page);
    expect(overflow.outside).toEqual([]);
    expect(overflow.scrollWidth).toBeLessThanOrEqual(overflow.width);
    const adapted = await page.getByTestId('adapted-accuracy').boundingBox();
    expect(adapted!.x + adapted!.width).toBeLessThanOrEqual(width);
    await saveScreen(page, testInfo, `scale-${width}-evaluate`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download the confusion matrix (CSV)' }).click(),
  ]);
  const csv = (await readFile((await download.path())!, 'utf8')).trimEnd().split('\n');
  expect(csv).toHaveLength(CLASSES + 1);
  expect(csv[0].split(',')).toHaveLength(CLASSES + 1);
  const cells = csv.slice(1).flatMap((row) => row.split(',').slice(1).map(Number));
  expect(cells.reduce((sum, n) => sum + n, 0)).toBe(CLASSES * (IMAGES_PER_CLASS - SHOTS));

  // Try it: the classes by probability, most likely first.
  await openSection(page, 'Try it');
  await page.getByLabel('Choose an image').setInputFiles(path.join(MANY_DIR, className(7), '0.png'));
  const table = page.getByRole('table', { name: 'Class probabilities' });
  await expect(table.getByRole('rowheader')).toHaveCount(5); // the top 5 by default
  await page.getByLabel('Classes shown').selectOption({ label: `All ${CLASSES}` });
  await expect(table.getByRole('rowheader')).toHaveCount(CLASSES);
  const column = (await table.getByRole('columnheader').allTextContents()).length;
  const shown = (await table.getByRole('row').locator(`td:nth-child(${column})`).allTextContents()).map((text) =>
    parseFloat(text),
  );
  expect(shown).toEqual([...shown].sort((a, b) => b - a));
  await saveScreen(page, testInfo, 'scale-1280-try');

  console.log(
    `[scale] Adapter library shown in ${await timeToScreen(page, 'Adapter library')} ms; ${JSON.stringify(await pageMemory(page))}`,
  );
  await saveScreen(page, testInfo, 'scale-1280-library');
  await page.setViewportSize({ width: 400, height: 800 });
  await saveScreen(page, testInfo, 'scale-400-library');
  expect(errors).toEqual([]);
});
