// Try it as Teachable Machine's preview: the camera classified live (one frame at a time, a few a
// second) until paused, and the table limited to the most likely classes.

import { expect, test } from '@playwright/test';
import { DATASET_CLASSES } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, loadTinyModel, openSection } from './steps';

test('classifies the camera live until paused, and lists the top classes it is asked for', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await openSection(page, 'Try it');

  await page.getByRole('button', { name: 'Use the camera' }).click();
  const live = page.getByRole('button', { name: 'Classify live' });
  await live.click();
  const frames = page.getByTestId('live-frames');
  // Several frames, each classified: the count only grows once a frame's prediction is back.
  await expect(frames).toHaveText(/^Live: ([3-9]|\d\d+) frames classified$/);
  const summary = page.getByTestId('prediction-summary');
  await expect(summary).toHaveText(/^Zero-shot: (one|two|zero)\.$/);
  const image = page.getByRole('img', { name: 'The image being classified' });
  const earlier = await image.getAttribute('src');
  await expect(image).not.toHaveAttribute('src', earlier!);
  await expect(page.getByRole('button', { name: 'Take photo' })).toBeDisabled();
  await saveScreen(page, testInfo, 'try-live');

  await page.getByRole('button', { name: 'Pause live' }).click();
  await expect(live).toHaveAttribute('aria-pressed', 'false');
  await expect(frames).toHaveText(/^Paused: \d+ frames classified$/);
  await expect(page.getByRole('button', { name: 'Take photo' })).toBeEnabled();

  // Every class while there are no more than the top 5 (the default), in the dataset's order; top 1 on request.
  const table = page.getByRole('table', { name: 'Class probabilities' });
  await expect(table.getByRole('rowheader')).toHaveText(DATASET_CLASSES);
  await page.getByLabel('Classes shown').selectOption({ label: 'Top 1' });
  const predicted = (await summary.textContent())!.replace(/^Zero-shot: (.*)\.$/, '$1');
  await expect(table.getByRole('rowheader')).toHaveText([predicted]);
  await expect(page.getByText(`The 1 most likely of ${DATASET_CLASSES.length} classes.`)).toBeVisible();
  await page.getByLabel('Classes shown').selectOption({ label: `All ${DATASET_CLASSES.length}` });
  await expect(table.getByRole('rowheader')).toHaveText(DATASET_CLASSES);
  await page.getByRole('button', { name: 'Close camera' }).click();
  expect(errors).toEqual([]);
});
