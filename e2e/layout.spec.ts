// Every screen at 1280 and 400 px wide, with a model, a dataset, a trained adapter, its evaluation and
// a prediction on show: nothing may make the page scroll sideways (checked by script), every section
// stays reachable from the navigation, and each screen is saved to e2e/screenshots/ to be looked at.

import { expect, test } from '@playwright/test';
import { TRY_IMAGE } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { horizontalOverflow, pageMemory, timeToScreen } from './measure';
import { addDatasetFolder, loadTinyModel, openSection } from './steps';

const SCREENS = [
  { id: 'gpu', title: 'GPU' },
  { id: 'model', title: 'Model' },
  { id: 'dataset', title: 'Dataset' },
  { id: 'train', title: 'Train' },
  { id: 'evaluate', title: 'Evaluate' },
  { id: 'try', title: 'Try it' },
  { id: 'adapters', title: 'Adapter library' },
];

test('every screen fits 1280 and 400 px wide windows without sideways scrolling', async ({ page }, testInfo) => {
  test.setTimeout(240_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await page.goto('/#/train');
  await page.getByLabel('Iterations').fill('2');
  await page.getByLabel('Batch size').fill('4');
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByRole('article', { name: 'Training run' }).getByText('Finished', { exact: true })).toBeVisible({
    timeout: 120_000,
  });
  await page.getByRole('link', { name: 'try it on an image' }).click();
  await page.getByLabel('Choose an image').setInputFiles(TRY_IMAGE);
  await expect(page.getByTestId('prediction-summary')).toHaveText(/^With the adapter/);
  await openSection(page, 'Evaluate');
  await expect(page.getByTestId('adapted-accuracy')).toBeVisible();

  for (const width of [1280, 400]) {
    await page.setViewportSize({ width, height: 800 });
    for (const screen of SCREENS) {
      const milliseconds = await timeToScreen(page, screen.title);
      const overflow = await horizontalOverflow(page);
      console.log(
        `[layout] ${width} px ${screen.title}: shown in ${milliseconds} ms, page ${overflow.scrollWidth} px wide`,
      );
      expect(overflow.outside, `${screen.title} at ${width} px`).toEqual([]);
      expect(overflow.scrollWidth, `${screen.title} at ${width} px`).toBeLessThanOrEqual(overflow.width);
      await saveScreen(page, testInfo, `screen-${width}-${screen.id}`);
    }
  }
  const memory = await pageMemory(page);
  console.log(`[layout] page memory: ${memory.heapMiB} MiB of JavaScript heap, ${memory.nodes} DOM nodes`);
  expect(errors).toEqual([]);
});
