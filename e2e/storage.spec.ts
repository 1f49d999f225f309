// A full disk: IndexedDB refuses a write with QuotaExceededError (simulated here by the page's own
// IndexedDB refusing adds and puts). The studio says what to do, and what was stored stays whole.

import { expect, test } from '@playwright/test';
import path from 'node:path';
import { DATASET_CLASSES, EXTRA_IMAGES_DIR, IMAGES_PER_CLASS } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, classCard } from './steps';

const STORAGE_FULL = 'Browser storage is full: delete adapters or clear the model cache, then try again.';

test('reports a full browser storage in words and keeps what was stored', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await page.addInitScript(() => {
    const flags = window as unknown as { storageFull: boolean };
    flags.storageFull = false;
    for (const method of ['add', 'put'] as const) {
      const original = IDBObjectStore.prototype[method];
      IDBObjectStore.prototype[method] = function (this: IDBObjectStore, ...args: Parameters<typeof original>) {
        if (flags.storageFull) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        return original.apply(this, args);
      };
    }
  });
  await addDatasetFolder(page);

  await page.evaluate(() => ((window as unknown as { storageFull: boolean }).storageFull = true));
  const first = DATASET_CLASSES[0];
  await classCard(page, first)
    .getByLabel(`Add images to ${first}`)
    .setInputFiles([0, 1].map((i) => path.join(EXTRA_IMAGES_DIR, `${first}-extra-${i}.png`)));
  await expect(page.getByTestId('dataset-problem')).toHaveText(STORAGE_FULL);
  await page.getByLabel('New class name').fill('three');
  await page.getByRole('button', { name: 'Add class' }).click();
  await expect(page.getByTestId('dataset-problem')).toHaveText(STORAGE_FULL);
  await expect(classCard(page, first).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);
  await saveScreen(page, testInfo, 'dataset-storage-full');

  // Nothing of the refused writes was kept, and nothing before them was lost.
  await page.reload();
  for (const name of DATASET_CLASSES)
    await expect(classCard(page, name).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);
  await expect(classCard(page, 'three')).toHaveCount(0);
  expect(errors).toEqual([]);
});
