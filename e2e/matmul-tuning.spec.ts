// The matmul tuning in the studio: schema version 3 adds its IndexedDB store, and a database version 2
// wrote upgrades in place with its records kept; the engine tunes on the first visit and the page stores
// the result, which the next visit hands back instead of tuning again.

import { expect, test } from '@playwright/test';
import { collectErrors } from './helpers';

/** What the studio's version 2 wrote: its stores, a class and the dataset's prompt template. */
async function writeVersion2Database(): Promise<void> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = indexedDB.open('octoclip', 2);
    request.onupgradeneeded = () => {
      const created = request.result;
      created.createObjectStore('models', { keyPath: 'id' });
      created
        .createObjectStore('modelFiles', { keyPath: ['modelId', 'file', 'index'] })
        .createIndex('byModel', 'modelId');
      created.createObjectStore('classes', { keyPath: 'id' });
      created.createObjectStore('images', { keyPath: 'id' }).createIndex('byClass', 'classId');
      created.createObjectStore('adapters', { keyPath: 'id' });
      created.createObjectStore('checkpoints', { keyPath: 'runId' });
      created.createObjectStore('datasetSettings', { keyPath: 'id' });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const tx = db.transaction(['classes', 'datasetSettings'], 'readwrite');
  tx.objectStore('classes').put({ id: 'class-1', name: 'tabby', position: 0 });
  tx.objectStore('datasetSettings').put({ id: 'dataset', promptTemplate: 'a photo of a {}, a cat.' });
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

/** The database as it is now: its version, stores and the records the test looks at. */
async function readDatabase() {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = indexedDB.open('octoclip');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const all = (store: string) =>
    new Promise<unknown[]>((resolve, reject) => {
      const request = db.transaction(store).objectStore(store).getAll();
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  const contents = {
    version: db.version,
    stores: [...db.objectStoreNames].sort(),
    classes: await all('classes'),
    datasetSettings: await all('datasetSettings'),
    matmulTunings: db.objectStoreNames.contains('matmulTunings')
      ? ((await all('matmulTunings')) as { adapter: string; config: string }[])
      : [],
  };
  db.close();
  return contents;
}

test('a version 2 database upgrades keeping its records; the matmul is tuned once and stored', async ({ page }) => {
  const errors = collectErrors(page);
  // A page of the studio's origin that does not open the database, to write version 2 before the studio runs.
  await page.route('**/write-version-2.html', (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>version 2</title>' }),
  );
  await page.goto('/write-version-2.html');
  await page.evaluate(writeVersion2Database);

  await page.goto('/');
  const matmul = page.getByTestId('matmul-config');
  await expect(matmul).toContainText('measured just now');
  const shown = (await matmul.locator('code').textContent()) ?? '';
  await expect
    .poll(async () => (await page.evaluate(readDatabase)).matmulTunings.map((t) => t.config))
    .toEqual([shown]);
  const upgraded = await page.evaluate(readDatabase);
  expect(upgraded.version).toBe(3);
  expect(upgraded.stores).toEqual([
    'adapters',
    'checkpoints',
    'classes',
    'datasetSettings',
    'images',
    'matmulTunings',
    'modelFiles',
    'models',
  ]);
  expect(upgraded.classes).toEqual([{ id: 'class-1', name: 'tabby', position: 0 }]);
  expect(upgraded.datasetSettings).toEqual([{ id: 'dataset', promptTemplate: 'a photo of a {}, a cat.' }]);
  expect(upgraded.matmulTunings[0].adapter).toMatch(/\S/);

  // The next visit hands the stored tuning to the engine, which uses it without measuring.
  await page.reload();
  await expect(matmul).toContainText('measured on an earlier visit');
  await expect(matmul.locator('code')).toHaveText(shown);
  expect(errors).toEqual([]);
});
