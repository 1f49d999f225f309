// The Adapter library's exchange: an adapter's file and its self-contained PEFT zip keep its name and metrics
// through a download and an import (the zip converted for the loaded model), a zip without class names is
// refused, and the library API snippet stays inside the window.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { readZip, writeZip } from '../src/common/zip';
import { randomAdapterFile } from '../test/helpers/random-adapter';
import { MODEL_FILE_NAMES, TINY_MODEL_DIR } from './fixtures';
import { loadTinyModel, openSection } from './steps';
import { saveScreen } from './helpers';

const METRICS = { zeroShotAccuracy: 0.5, heldOutAccuracy: 0.75 };

test("keeps an adapter's name and metrics through its file and its PEFT zip, refuses a zip without classes, and shows the snippet", async ({
  page,
}, testInfo) => {
  test.setTimeout(180_000);
  await loadTinyModel(page);
  const files = Object.fromEntries(
    MODEL_FILE_NAMES.map((name) => [
      name,
      name.endsWith('.safetensors')
        ? new Uint8Array(readFileSync(path.join(TINY_MODEL_DIR, name)))
        : readFileSync(path.join(TINY_MODEL_DIR, name), 'utf8'),
    ]),
  );
  await openSection(page, 'Adapter library');
  await page.getByLabel('Import an adapter file').setInputFiles({
    name: 'shapes.octoclip.safetensors',
    mimeType: 'application/octet-stream',
    buffer: Buffer.from(randomAdapterFile('local/tiny', files, ['circle', 'square'], { metrics: METRICS })),
  });
  const accuracy = '75.0% (zero-shot 50.0%)';
  await expect(page.getByRole('listitem', { name: 'Adapter shapes' })).toContainText(accuracy);
  // Renamed here, the adapter keeps its name through a download and an import (its file records it).
  await page.getByRole('textbox', { name: 'Name of adapter shapes' }).fill('Shapes, round 2');
  await page.getByRole('textbox', { name: 'Name of adapter shapes' }).press('Enter');
  const item = page.getByRole('listitem', { name: 'Adapter Shapes, round 2' });
  await expect(item).toBeVisible();
  const [file] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: 'Download Shapes, round 2', exact: true }).click(),
  ]);
  expect(file.suggestedFilename()).toBe('shapes-round-2.octoclip.safetensors');
  await page.getByLabel('Import an adapter file').setInputFiles({
    name: 'from-a-friend.octoclip.safetensors',
    mimeType: 'application/octet-stream',
    buffer: readFileSync((await file.path())!),
  });
  const copy = page.getByRole('listitem', { name: 'Adapter Shapes, round 2 (2)' });
  await expect(copy).toContainText(accuracy);
  await saveScreen(page, testInfo, 'library-imported-keeps-name');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: 'Download the PEFT export of Shapes, round 2 as a zip' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('shapes-round-2-peft.zip');
  const zip = new Uint8Array(readFileSync((await download.path())!));
  const entries = await readZip(zip);
  expect([...entries.keys()].sort()).toEqual([
    'README.md',
    'adapter_config.json',
    'adapter_model.safetensors',
    'classes.json',
  ]);
  expect(JSON.parse(new TextDecoder().decode(entries.get('classes.json')))).toEqual({
    class_names: ['circle', 'square'],
    prompt_template: 'a photo of a {}.',
    name: 'Shapes, round 2',
    metrics: METRICS,
  });

  await page
    .getByLabel('Import a PEFT zip')
    .setInputFiles({ name: 'shapes-round-2-peft.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
  const imported = page.getByRole('listitem', { name: 'Adapter Shapes, round 2 (3)' });
  await expect(imported).toBeVisible();
  await expect(imported).toContainText('circle, square');
  await expect(imported).toContainText(accuracy);

  entries.delete('classes.json');
  await page.getByLabel('Import a PEFT zip').setInputFiles({
    name: 'bare.zip',
    mimeType: 'application/zip',
    buffer: Buffer.from(writeZip(Object.fromEntries(entries))),
  });
  await expect(page.getByTestId('library-problem')).toContainText('has no classes.json with its class names');

  await imported.getByText('Use it in your code').click();
  await expect(imported.getByTestId('snippet-browser')).toContainText('adapter: { library: "Shapes, round 2 (3)" }');
  await expect(imported.getByTestId('snippet-node')).toContainText('adapter: "shapes-round-2-3.octoclip.safetensors"');
  // The code scrolls inside its own box: the page never gets wider than the window.
  for (const width of [1280, 400]) {
    await page.setViewportSize({ width, height: 800 });
    await expect(imported.getByTestId('snippet-node')).toBeVisible();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${width} px window`).toBeLessThanOrEqual(0);
    await saveScreen(page, testInfo, `library-snippet-${width}`);
    // Compare and Delete stay within the window's width.
    for (const control of [imported.getByText('Compare'), imported.getByRole('button', { name: /^Delete / })]) {
      const box = (await control.boundingBox())!;
      expect(box.x + box.width, `${width} px window`).toBeLessThanOrEqual(width);
    }
  }
});
