// How long a run trains: a time budget on this device sets the iterations from the measured step time
// (the recipe's 500 x shots is one click away), and early stopping ends a short run on the tiny model
// once held-out accuracy stops improving, keeping the best evaluation's adapter.

import { expect, test } from '@playwright/test';
import { budgetIterations, recipeIterations } from '../src/common/recipe';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, loadTinyModel } from './steps';

test('a time budget sets the iterations from the measured step time; the recipe button restores 500 x shots', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await page.goto('./#/train');
  await page.getByLabel('Batch size').fill('4');
  await expect(page.getByTestId('time-estimate')).toBeVisible({ timeout: 60_000 });

  // The step time the estimate keeps for these settings (one calibration on this page).
  const stepTimes: Record<string, { millisecondsPerStep: number }> = await page.evaluate(
    () => JSON.parse(localStorage.getItem('octoclip.step-times') ?? '{}').state.stepTimes,
  );
  const [{ millisecondsPerStep }] = Object.values(stepTimes);
  const length = page.getByRole('group', { name: 'Run length' });
  await length.getByRole('button', { name: 'About 15 minutes' }).click();
  const iterations = budgetIterations(15 * 60_000, millisecondsPerStep);
  await expect(page.getByLabel('Iterations')).toHaveValue(String(iterations));
  await expect(length.getByRole('button', { name: 'About 15 minutes' })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByTestId('time-estimate')).toContainText(`for ${iterations.toLocaleString('en-US')} steps`);
  await expect(page.getByTestId('time-estimate')).toContainText(/About (14 min [3-5]\d s|15 min [0-2]?\d s)/);
  await saveScreen(page, testInfo, 'train-time-budget');

  await length.getByRole('button', { name: /^The recipe/ }).click();
  await expect(page.getByLabel('Iterations')).toHaveValue(String(recipeIterations(4)));
  expect(errors).toEqual([]);
});

test('the estimate counts held-out evaluations and checkpoints: within 35% of a first run, 25% of the next', async ({
  page,
}) => {
  test.setTimeout(240_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await page.goto('./#/train');
  await page.getByLabel('Iterations').fill('80');
  await page.getByLabel('Batch size').fill('4');
  await page.getByText('Advanced').click();
  await page.getByLabel('Held-out evaluation every (steps)').fill('8');
  await page.getByLabel('Checkpoint every (steps)').fill('20');
  const estimate = page.getByTestId('time-estimate');
  const run = page.getByRole('article', { name: 'Training run' });
  /** Runs the settings once; the estimate shown before, and the run's time from Start to Finished. */
  const timedRun = async (source: RegExp) => {
    // The zero-shot baseline, steps 8 to 72, and the final one.
    await expect(estimate).toContainText(/for 80 steps .*and 11 held-out evaluations/, { timeout: 60_000 });
    await expect(estimate).toContainText(source);
    const estimated = Number(await estimate.getAttribute('data-milliseconds'));
    const trained = page.getByTestId('trained-adapter-name');
    const before = (await trained.count()) ? await trained.textContent() : null;
    const started = Date.now();
    await page.getByRole('button', { name: 'Start training' }).click();
    // Finished, with this run's adapter (a second run's name differs from the first's).
    await expect(run.getByText('Finished', { exact: true })).toBeVisible({ timeout: 200_000 });
    if (before) await expect(trained).not.toHaveText(before, { timeout: 200_000 });
    return { estimated, measured: Date.now() - started };
  };
  const first = await timedRun(/from timed steps/);
  const outside = await page.evaluate(() =>
    Object.values<{ millisecondsPerRun?: number; millisecondsPerStep: number; evaluation: unknown }>(
      JSON.parse(localStorage.getItem('octoclip.step-times') ?? '{}').state.stepTimes,
    ).map((times) => JSON.stringify(times)),
  );
  console.log(`[estimate] first run: estimated ${first.estimated} ms, took ${first.measured} ms; kept ${outside}`);
  // Before any run the step time is the calibration's, taken while the page is idle; a run's steps share
  // the CPU with the page drawing its charts (SwiftShader here), so the first estimate is off by up to
  // 23% on this machine (seen 4% to 23% short, once 16% long). A second run is estimated from the first's own steps.
  expect(Math.abs(first.estimated - first.measured)).toBeLessThanOrEqual(0.35 * first.measured);
  await page.goto('./#/train');
  const second = await timedRun(/as measured by the last run/);
  console.log(`[estimate] second run: estimated ${second.estimated} ms, took ${second.measured} ms`);
  expect(Math.abs(second.estimated - second.measured)).toBeLessThanOrEqual(0.25 * second.measured);
  expect(errors).toEqual([]);
});

test('early stopping ends a short run when held-out accuracy stops improving and keeps the best adapter', async ({
  page,
}, testInfo) => {
  test.setTimeout(240_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await page.goto('./#/train');
  await page.getByLabel('Iterations').fill('60');
  await page.getByLabel('Batch size').fill('4');
  await page.getByLabel('Learning rate', { exact: true }).fill('0.05');
  await page.getByText('Advanced').click();
  await page.getByLabel('Held-out evaluation every (steps)').fill('2');
  await page.getByLabel('Stop early after (evaluations)').fill('2');
  await page.getByRole('button', { name: 'Start training' }).click();

  const status = page.getByTestId('run-status');
  await expect(status).toHaveText(
    /^Stopped early at step \d+ of 60: kept the adapter of step \d+, the best held-out accuracy\.$/,
    { timeout: 200_000 },
  );
  const [, lastStep, keptStep] = /step (\d+) of 60: kept the adapter of step (\d+)/
    .exec((await status.textContent()) ?? '')!
    .map(Number);
  // Two evaluations (every 2 steps) without a better accuracy after the kept one.
  expect(lastStep).toBeLessThan(60);
  expect(keptStep % 2).toBe(0);
  expect(lastStep - keptStep).toBeGreaterThanOrEqual(4);
  await expect(page.getByRole('progressbar')).toHaveAttribute('aria-valuetext', new RegExp(`^step ${lastStep} of 60`));
  await expect(page.getByTestId('trained-adapter-name')).toBeVisible();
  await saveScreen(page, testInfo, 'train-early-stop');
  expect(errors).toEqual([]);
});
