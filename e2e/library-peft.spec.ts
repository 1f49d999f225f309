// The Adapter library's PEFT exchange: download an adapter as the self-contained PEFT zip, import that zip
// back (converted for the loaded model), refuse one without class names, and show the library API snippet.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { readZip, writeZip } from '../src/common/zip';
import { randomAdapterFile } from '../test/helpers/random-adapter';
import { MODEL_FILE_NAMES, TINY_MODEL_DIR } from './fixtures';
import { loadTinyModel, openSection } from './steps';
import { saveScreen } from './helpers';

test('downloads an adapter as a PEFT zip, imports the zip back, and shows the snippet', async ({ page }, testInfo) => {
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
    buffer: Buffer.from(randomAdapterFile('local/tiny', files, ['circle', 'square'])),
  });
  const item = page.getByRole('listitem', { name: 'Adapter shapes' });
  await expect(item).toBeVisible();

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: 'Download the PEFT export of shapes as a zip' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('shapes-peft.zip');
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
  });

  await page
    .getByLabel('Import a PEFT zip')
    .setInputFiles({ name: 'shapes-peft.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
  const imported = page.getByRole('listitem', { name: 'Adapter shapes-peft' });
  await expect(imported).toBeVisible();
  await expect(imported).toContainText('circle, square');

  entries.delete('classes.json');
  await page.getByLabel('Import a PEFT zip').setInputFiles({
    name: 'bare.zip',
    mimeType: 'application/zip',
    buffer: Buffer.from(writeZip(Object.fromEntries(entries))),
  });
  await expect(page.getByTestId('library-problem')).toContainText('has no classes.json with its class names');

  await imported.getByText('Use it in your code').click();
  await expect(imported.getByTestId('snippet-browser')).toContainText('adapter: { library: "shapes-peft" }');
  await expect(imported.getByTestId('snippet-node')).toContainText('adapter: "shapes-peft.octoclip.safetensors"');
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
