// The Model screen: a download from the (stand-in) Hugging Face Hub that survives an interrupted
// connection, a cache that loads the model again offline, local files, and a broken model file.

import { expect, test, type Page } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { BROKEN_MODEL_DIR, HUB_REPO, MODEL_FILE_NAMES, TINY_MODEL_DIR } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { fakeHub, slowHub } from './hub';

function loadedCard(page: Page) {
  return page.getByRole('article', { name: 'Loaded model' });
}

test('downloads a model from the Hub, resumes an interrupted download, and loads it from the cache offline', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  const hub = await fakeHub(page, HUB_REPO);
  hub.interruptNext('model.safetensors');
  await page.goto('/#/model');
  await expect(page.getByRole('heading', { level: 1, name: 'Model' })).toBeVisible();

  await page.getByLabel('Repository').fill(HUB_REPO);
  await page.getByRole('button', { name: 'Download and load' }).click();

  // The connection drops halfway through the weights: the part received is kept.
  const problem = page.getByRole('alert').filter({ hasText: 'The model could not be loaded' });
  await expect(problem).toContainText('interrupted');
  await expect(page.getByRole('article', { name: 'Model cache' })).toContainText('Partly downloaded');
  await saveScreen(page, testInfo, 'model-download-interrupted');

  const weights = await readFile(path.join(TINY_MODEL_DIR, 'model.safetensors'));
  await problem.getByRole('button', { name: 'Retry download' }).click();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText(HUB_REPO);
  // The retry asked only for the rest of the file.
  const weightRequests = hub.requests.filter((r) => r.file === 'model.safetensors');
  expect(weightRequests).toHaveLength(2);
  expect(weightRequests[0].range).toBeNull();
  expect(weightRequests[1].range).toBe(`bytes=${weights.length >> 1}-`);
  expect(hub.requests.filter((r) => r.file === 'config.json')).toHaveLength(1);

  await expect(loadedCard(page)).toContainText('3 layers, width 48, 32 px images in 8 px patches');
  await expect(page.getByTestId('cache-size')).toContainText(/Models in this browser: \d+(\.\d)? KiB/);
  await saveScreen(page, testInfo, 'model-loaded');

  // A second visit without a connection loads the model from the browser's storage.
  hub.goOffline();
  const requestsBefore = hub.requests.length;
  await page.reload();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText(HUB_REPO);
  expect(hub.requests.length).toBe(requestsBefore);

  await page.getByRole('button', { name: 'Clear model cache' }).click();
  await page.getByRole('group', { name: 'Confirm' }).getByRole('button', { name: 'Clear model cache' }).click(); // it asks first
  await expect(page.getByTestId('cache-size')).toContainText('Models in this browser: 0 bytes');
  expect(errors).toEqual([]);
});

test('loads local model files, and refuses a broken model file with the loader’s message, keeping the loaded model', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await page.goto('/#/model');
  const picker = page.getByLabel('Choose model files');

  await page.getByLabel('Name for this model').fill('tiny');
  await picker.setInputFiles(MODEL_FILE_NAMES.map((name) => path.join(TINY_MODEL_DIR, name)));
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText('local/tiny');

  await page.getByLabel('Name for this model').fill('broken');
  await picker.setInputFiles(MODEL_FILE_NAMES.map((name) => path.join(BROKEN_MODEL_DIR, name)));
  await expect(page.getByTestId('model-problem')).toContainText('model.safetensors:');
  await expect(page.getByTestId('model-problem')).toContainText('outside the');
  // The model that was loaded stays loaded, and the broken files were not kept.
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText('local/tiny');
  await expect(page.getByRole('article', { name: 'Model cache' })).not.toContainText('local/broken');
  await saveScreen(page, testInfo, 'model-broken-file');
  expect(errors).toEqual([]);
});

test('shows bytes, speed and time left over a slow connection, stops on request and resumes', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await slowHub(page, HUB_REPO, 64 * 1024);
  await page.goto('/#/model');
  await page.getByLabel('Repository').fill(HUB_REPO);
  await page.getByRole('button', { name: 'Download and load' }).click();

  const progress = page.getByRole('progressbar', { name: /^Downloading model\.safetensors \(file 2 of 5\)$/ });
  await expect(progress).toHaveAttribute('aria-valuetext', /^\d+(\.\d)? KiB of 613\.4 KiB · \d+(\.\d)? KiB\/s · \d+ s left$/);
  await saveScreen(page, testInfo, 'model-downloading');

  await page.getByRole('button', { name: 'Stop download' }).click();
  const problem = page.getByRole('alert').filter({ hasText: 'The model could not be loaded' });
  await expect(problem).toContainText(`Download of ${HUB_REPO} stopped. The part received is kept.`);
  await problem.getByRole('button', { name: 'Retry download' }).click();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText(HUB_REPO, { timeout: 60_000 });

  const weightRequests = await page.evaluate(() => (window as unknown as { hubRequests: { file: string; range: string | null }[] }).hubRequests.filter((r) => r.file === 'model.safetensors'));
  expect(weightRequests).toHaveLength(2);
  expect(weightRequests[1].range).toMatch(/^bytes=[1-9]\d*-$/);
  expect(errors).toEqual([]);
});
