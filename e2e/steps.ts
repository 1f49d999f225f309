// Steps several tests take the same way a user does: load the tiny model from local files, add the
// image set from its folder.

import { expect, type Page } from '@playwright/test';
import path from 'node:path';
import { DATASET_CLASSES, DATASET_DIR, IMAGES_PER_CLASS, MODEL_FILE_NAMES, TINY_MODEL_DIR } from './fixtures';

/** Loads the tiny CLIP from its files on the Model screen, as "local/tiny". */
export async function loadTinyModel(page: Page): Promise<void> {
  await page.goto('./#/model'); // relative: the site may be served under a sub-path
  await page.getByLabel('Name for this model').fill('tiny');
  await page
    .getByLabel('Choose model files')
    .setInputFiles(MODEL_FILE_NAMES.map((name) => path.join(TINY_MODEL_DIR, name)));
  await expect(page.getByTestId('loaded-model')).toHaveText('local/tiny');
}

/** Adds the image set's class folders on the Dataset screen. */
export async function addDatasetFolder(page: Page): Promise<void> {
  await page.goto('./#/dataset');
  await page.getByLabel('Choose a folder').setInputFiles(DATASET_DIR);
  for (const name of DATASET_CLASSES)
    await expect(classCard(page, name).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);
}

/**
 * Opens a studio section from the navigation and waits until its screen is shown, so that the next
 * locator cannot resolve on the screen being left.
 */
export async function openSection(page: Page, title: string): Promise<void> {
  await page
    .getByRole('navigation', { name: 'Studio sections' })
    .getByRole('link', { name: title, exact: true })
    .click();
  await expect(page.getByRole('heading', { level: 1, name: title, exact: true })).toBeVisible();
}

export function classCard(page: Page, name: string) {
  return page.getByRole('article', { name: `Class ${name}` });
}
