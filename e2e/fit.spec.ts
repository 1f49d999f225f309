// Training sized to the GPU: the Train screen shows the passes chosen (Automatic by default) next to the
// memory figure; a smaller GPU memory setting gives smaller passes with which the run trains; a budget
// that even one image per pass is over puts the problem in the checklist and keeps Start off.

import { expect, test, type Page } from '@playwright/test';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, loadTinyModel } from './steps';

const problem = (page: Page, check: string) =>
  page.getByRole('list', { name: 'What will train' }).locator(`[data-check="${check}"]`);
const startButton = (page: Page) => page.getByRole('button', { name: 'Start training' });
const MIB = 2 ** 20;

/** The planned peak the Train screen shows, in bytes (its title has them exactly). */
async function shownPeak(page: Page): Promise<number> {
  const title = await page.getByTestId('expected-memory').getAttribute('title');
  return Number(/^([\d,]+) bytes$/.exec(title ?? '')![1].replaceAll(',', ''));
}

test('sizes the passes to the GPU memory, trains with smaller ones under a smaller budget, and refuses what cannot fit', async ({
  page,
}, testInfo) => {
  test.setTimeout(180_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await page.goto('/#/train');
  await page.getByLabel('Iterations').fill('4');
  await page.getByLabel('Batch size').fill('4');
  await page.getByText('Advanced').click();
  await expect(page.getByLabel('Images per pass (micro-batch)')).toHaveValue('automatic');
  await expect(page.getByTestId('passes')).toHaveText('4 images and 3 prompts (automatic)');
  await expect(page.getByTestId('expected-memory')).toHaveText(/^[\d.]+ [KM]iB$/);
  await expect(page.getByTestId('memory-budget')).toHaveText(/^of [\d.]+ [KMGT]iB$/);

  // A budget of exactly what passes of 2 images need (as planned with 2 chosen by hand).
  const peakOfFour = await shownPeak(page);
  await page.getByLabel('Images per pass (micro-batch)').selectOption('2');
  await expect(page.getByTestId('passes')).toHaveText('2 images and 3 prompts');
  const peakOfTwo = await shownPeak(page);
  expect(peakOfTwo).toBeLessThan(peakOfFour);
  await page.getByLabel('Images per pass (micro-batch)').selectOption('automatic');
  await expect(page.getByTestId('passes')).toHaveText('4 images and 3 prompts (automatic)');
  await page.getByLabel('GPU memory for training (MiB)').fill(String(peakOfTwo / MIB));
  await expect(page.getByTestId('passes')).toHaveText('2 images and 3 prompts (automatic)');
  await expect(startButton(page)).toBeEnabled();
  await saveScreen(page, testInfo, 'train-passes-fitted');
  await startButton(page).click();
  const run = page.getByRole('article', { name: 'Training run' });
  await expect(run.getByTestId('run-status')).toHaveText('Finished.', { timeout: 120_000 });
  await expect(run).toContainText('step 4 of 4');

  // Chosen by hand, a micro-batch is kept: 4 images are over this budget, and the checklist says what to do.
  await page.getByLabel('Images per pass (micro-batch)').selectOption('4');
  await expect(problem(page, 'memory')).toContainText(
    "The planned GPU memory is over this device's limits with 4 images per pass (set the micro-batch to Automatic",
  );
  await expect(startButton(page)).toBeDisabled();

  await page.getByLabel('Images per pass (micro-batch)').selectOption('automatic');
  await page.getByLabel('GPU memory for training (MiB)').fill('0.5');
  await expect(problem(page, 'memory')).toContainText(
    "The planned GPU memory is over this device's limits even with one image per pass: it needs ",
  );
  await expect(problem(page, 'memory')).toContainText(
    'MiB at its peak, over the 0.5 MiB budget. Use a smaller batch, fewer classes',
  );
  await expect(startButton(page)).toBeDisabled();
  await saveScreen(page, testInfo, 'train-does-not-fit');

  // 0: automatic again, from the device's limits.
  await page.getByLabel('GPU memory for training (MiB)').fill('0');
  await expect(problem(page, 'memory')).toHaveCount(0);
  await expect(page.getByTestId('passes')).toHaveText('4 images and 3 prompts (automatic)');
  await expect(startButton(page)).toBeEnabled();
  expect(errors).toEqual([]);
});

test('settings saved before Automatic existed: a micro-batch equal to the batch becomes Automatic, another is kept', async ({
  context,
}) => {
  for (const [saved, shown] of [
    [8, 'automatic'],
    [4, '4'],
  ] as const) {
    // The saved settings are in place before the studio's first script runs, as after an upgrade.
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.addInitScript((microBatchSize) => {
      localStorage.setItem(
        'octoclip.training-settings',
        JSON.stringify({ state: { settings: { batchSize: 8, microBatchSize } }, version: 1 }),
      );
    }, saved);
    await page.goto('/#/train');
    await page.getByText('Advanced').click();
    await expect(page.getByLabel('Batch size')).toHaveValue('8');
    await expect(page.getByLabel('Images per pass (micro-batch)')).toHaveValue(shown);
    expect(errors).toEqual([]);
    await page.close();
  }
});

test('precision: auto by default, f16-storage plans less memory, is kept with the settings and reaches the run', async ({
  page,
}, testInfo) => {
  test.setTimeout(180_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await page.goto('/#/train');
  await page.getByLabel('Iterations').fill('4');
  await page.getByLabel('Batch size').fill('4');
  await page.getByText('Advanced').click();
  const precision = page.getByLabel('Precision', { exact: true });
  await expect(precision).toHaveValue('auto');
  await expect(page.getByTestId('precision')).toHaveText(
    'f32 (auto: f32 weights fit 4 images and 3 prompts per pass, as large as half-precision ones)',
  );
  const f32Peak = await shownPeak(page);
  // f16 arithmetic needs shader-f16, which SwiftShader lacks: offered, greyed out, saying why.
  const f16 = precision.locator('option[value="f16"]');
  await expect(f16).toBeDisabled();
  await expect(f16).toContainText('(unavailable: this GPU lacks shader-f16)');
  await precision.selectOption('f16-storage');
  await expect(page.getByTestId('precision')).toHaveText('f16-storage (as set)');
  await expect.poll(() => shownPeak(page)).toBeLessThan(f32Peak);
  await saveScreen(page, testInfo, 'train-precision');

  // Kept with the Train screen's settings (localStorage, which the workspace file carries), across a reload.
  const saved = await page.evaluate(
    () => JSON.parse(localStorage.getItem('octoclip.training-settings') ?? '{}').state.settings.precision,
  );
  expect(saved).toBe('f16-storage');
  await page.reload();
  await page.getByText('Advanced').click();
  await expect(precision).toHaveValue('f16-storage');

  // The model was loaded in f32: the run loads its weights again in half precision, and its adapter says so.
  await expect(startButton(page)).toBeEnabled({ timeout: 60_000 });
  await startButton(page).click();
  const run = page.getByRole('article', { name: 'Training run' });
  await expect(run.getByTestId('run-status')).toHaveText('Finished.', { timeout: 120_000 });
  const trainedWith = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open('octoclip');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const adapters = await new Promise<{ meta: { training: { precision?: string } } }[]>((resolve, reject) => {
      const request = db.transaction('adapters').objectStore('adapters').getAll();
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    db.close();
    return adapters.map((adapter) => adapter.meta.training.precision);
  });
  expect(trainedWith).toEqual(['f16-storage']);
  // The model stays in the precision the run loaded it in, and the Model screen says so.
  await page.goto('/#/model');
  await expect(page.locator('dd', { hasText: /B \(f16-storage\)$/ })).toBeVisible();
  expect(errors).toEqual([]);
});
