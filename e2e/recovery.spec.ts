// A training run that loses its GPU: the browser's GPU process crashes mid-run. The page says the run
// was interrupted, reconnects, loads the model again from the cache and resumes from the last checkpoint;
// then the run is cancelled, which keeps nothing. This test starts its own browser: crashing the GPU
// process affects every page of a browser.

import { chromium, expect, test } from '@playwright/test';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, loadTinyModel, openSection } from './steps';

test('resumes a run from its checkpoint after the GPU device is lost, and cancels it', async ({}, testInfo) => {
  test.setTimeout(180_000);
  const browser = await chromium.launch(testInfo.project.use.launchOptions);
  try {
    const page = await browser.newPage({ baseURL: testInfo.project.use.baseURL });
    const errors = collectErrors(page);
    await loadTinyModel(page);
    await addDatasetFolder(page);

    await page.goto('/#/train');
    await page.getByLabel('Iterations').fill('400');
    await page.getByLabel('Batch size').fill('4');
    await page.getByText('Advanced').click();
    await page.getByLabel('Checkpoint every (steps)').fill('3');
    await page.getByRole('button', { name: 'Start training' }).click();
    const run = page.getByRole('article', { name: 'Training run' });
    await expect(run).toContainText(/checkpoint at step \d+/, { timeout: 90_000 });

    const cdp = await browser.newBrowserCDPSession();
    await cdp.send('Browser.crashGpuProcess');

    const banner = page.getByRole('region', { name: 'Interrupted training run' });
    await expect(banner.getByTestId('interrupted-run')).toHaveText(/^A run was interrupted at step \d+ of 400$/);
    await expect(banner).toContainText('lost');
    const interruptedAt = Number(
      /step (\d+)/.exec((await banner.getByTestId('interrupted-run').textContent()) ?? '')![1],
    );
    expect(interruptedAt).toBeGreaterThanOrEqual(3);
    await saveScreen(page, testInfo, 'train-device-lost');

    // Resume reconnects to a new device and loads the model from the cache first.
    await banner.getByRole('button', { name: 'Resume' }).click();
    await expect(banner).toHaveCount(0);
    const loss = page.getByRole('img', { name: /^Loss:/ });
    await expect
      .poll(async () => Number(await loss.getAttribute('data-points')), { timeout: 90_000 })
      .toBeGreaterThan(2 * interruptedAt);
    await run.getByRole('button', { name: 'Pause' }).click();
    await expect(run.getByText('Paused', { exact: true })).toBeVisible();
    // The steps before the checkpoint come from storage, the later ones from the resumed run: none twice, none missing.
    const steps = Number(/(\d+) steps/.exec((await loss.getAttribute('aria-label')) ?? '')![1]);
    await expect(run.getByRole('progressbar')).toHaveAttribute('aria-valuetext', new RegExp(`^step ${steps} of 400`));

    await run.getByRole('button', { name: 'Cancel' }).click();
    await expect(page.getByTestId('run-status')).toHaveText('Cancelled: nothing was saved.');
    await openSection(page, 'Adapter library');
    await expect(page.getByRole('heading', { name: 'No adapters yet' })).toBeVisible();
    // A cancelled run leaves nothing to resume.
    await page.reload();
    await expect(banner).toHaveCount(0);
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
});
