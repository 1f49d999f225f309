// Nothing lost by a slip: deleting a class, an image or an adapter offers Undo (the button, or Ctrl+Z) for a
// few seconds, deleting cached models asks first, and the whole workspace moves to another browser as one file
// (a file that is not one is refused with the reason, and nothing is imported).

import { expect, test, type Page } from '@playwright/test';
import { readFile, writeFile } from 'node:fs/promises';
import { DATASET_CLASSES, IMAGES_PER_CLASS } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, classCard, loadTinyModel, openSection } from './steps';

const undoBar = (page: Page) => page.getByRole('status', { name: 'Undo' });

/** Trains a few steps, which saves an adapter to the library; returns its name. */
async function trainAdapter(page: Page): Promise<string> {
  await page.goto('./#/train');
  await page.getByLabel('Iterations').fill('3');
  await page.getByLabel('Batch size').fill('4');
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByRole('article', { name: 'Training run' }).getByText('Finished', { exact: true })).toBeVisible({
    timeout: 120_000,
  });
  return (await page.getByTestId('trained-adapter-name').textContent())!;
}

test('deleting a class, an image or an adapter can be undone; clearing models asks first', async ({
  page,
}, testInfo) => {
  test.setTimeout(240_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  const [first, , last] = DATASET_CLASSES;

  await classCard(page, last)
    .getByRole('button', { name: `Delete class ${last}` })
    .click();
  await expect(classCard(page, last)).toHaveCount(0);
  await expect(undoBar(page).getByTestId('undo-message')).toHaveText(
    `Deleted the class “${last}” and its ${IMAGES_PER_CLASS} images.`,
  );
  await saveScreen(page, testInfo, 'undo-class');
  await undoBar(page).getByRole('button', { name: 'Undo' }).click();
  await expect(undoBar(page)).toHaveCount(0);
  await expect(classCard(page, last).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);
  // Back in its place, for good.
  await page.reload();
  const cards = page.getByRole('article', { name: /^Class / });
  for (const [i, name] of DATASET_CLASSES.entries()) await expect(cards.nth(i)).toHaveAccessibleName(`Class ${name}`);

  const image = classCard(page, first)
    .getByRole('button', { name: /^Delete image / })
    .first();
  const imageName = (await image.getAttribute('aria-label'))!.replace('Delete image ', '');
  await image.click();
  await expect(classCard(page, first).getByRole('img')).toHaveCount(IMAGES_PER_CLASS - 1);
  await expect(undoBar(page).getByTestId('undo-message')).toHaveText(`Deleted the image ${imageName}.`);
  // Ctrl+Z (⌘Z on a Mac) takes the offer, except in a text field, where it undoes typing.
  const template = page.getByRole('textbox', { name: 'Prompt template' });
  await template.focus();
  await page.keyboard.press('ControlOrMeta+z');
  await expect(undoBar(page).getByRole('button', { name: 'Undo' })).toBeVisible();
  await expect(classCard(page, first).getByRole('img')).toHaveCount(IMAGES_PER_CLASS - 1);
  await template.blur();
  await page.keyboard.press('ControlOrMeta+z');
  await expect(undoBar(page)).toHaveCount(0);
  await expect(classCard(page, first).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);

  // Without Undo (the offer dismissed here; it also ends by itself: test/ui/undo.test.ts), the deletion stays.
  await classCard(page, last)
    .getByRole('button', { name: `Delete class ${last}` })
    .click();
  await expect(undoBar(page)).toBeVisible();
  await undoBar(page).getByRole('button', { name: 'Dismiss' }).click();
  await expect(undoBar(page)).toHaveCount(0);
  await page.reload();
  await expect(classCard(page, first)).toBeVisible();
  await expect(classCard(page, last)).toHaveCount(0);

  const adapterName = await trainAdapter(page);
  await openSection(page, 'Adapter library');
  const adapter = page.getByRole('listitem', { name: `Adapter ${adapterName}` });
  await adapter.getByRole('button', { name: `Delete ${adapterName}` }).click();
  await expect(adapter).toHaveCount(0);
  await expect(undoBar(page).getByTestId('undo-message')).toHaveText(`Deleted the adapter “${adapterName}”.`);
  await undoBar(page).getByRole('button', { name: 'Undo' }).click();
  await expect(adapter).toBeVisible();
  await page.reload();
  await expect(adapter).toBeVisible();

  await openSection(page, 'Model');
  // The suggested models' rows arrive once the engine has planned them, moving the cache card down: click after.
  await expect(page.getByRole('table', { name: 'Suggested models' })).not.toContainText('Planning');
  const confirm = page.getByRole('group', { name: 'Confirm' });
  await page.getByRole('button', { name: 'Delete local/tiny from the cache' }).click();
  await expect(confirm).toContainText('Delete local/tiny (');
  await saveScreen(page, testInfo, 'confirm-model-delete');
  await confirm.getByRole('button', { name: 'Keep' }).click();
  await expect(page.getByTestId('cache-size')).not.toContainText('0 bytes');
  await page.getByRole('button', { name: 'Clear model cache' }).click();
  await expect(confirm).toContainText('Delete every cached model');
  await confirm.getByRole('button', { name: 'Clear model cache' }).click();
  await expect(page.getByTestId('cache-size')).toContainText('Models in this browser: 0 bytes');
  expect(errors).toEqual([]);
});

test('exports the workspace as one file and imports it in another browser; refuses a file that is not one', async ({
  page,
  browser,
}, testInfo) => {
  test.setTimeout(240_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  const adapterName = await trainAdapter(page); // also stores Iterations 3 and Batch size 4 as settings

  await openSection(page, 'Workspace');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export workspace' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^octoclip-\d{4}-\d\d-\d\d\.octoclip-workspace$/);
  const file = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(file);
  await expect(page.getByTestId('workspace-notice')).toHaveText(
    `Exported 3 classes, ${3 * IMAGES_PER_CLASS} images and 1 adapter.`,
  );

  // Another browser, with nothing stored: storage is per browser profile.
  const other = await browser.newContext({ baseURL: testInfo.project.use.baseURL });
  try {
    const elsewhere = await other.newPage();
    const otherErrors = collectErrors(elsewhere);
    await elsewhere.goto('./#/workspace');
    const picker = elsewhere.getByLabel('Import a workspace file');
    const problem = elsewhere.getByTestId('workspace-problem');

    // Not a workspace, and a workspace cut short: refused with the reason, nothing imported.
    await picker.setInputFiles({
      name: 'notes.octoclip-workspace',
      mimeType: 'text/plain',
      buffer: Buffer.from('Notes, not a workspace.\n'),
    });
    await expect(problem).toHaveText(
      'notes.octoclip-workspace is not an octoclip workspace file: it does not start with “octoclip workspace”. Nothing was imported.',
    );
    const whole = await readFile(file);
    const cut = testInfo.outputPath('cut.octoclip-workspace');
    await writeFile(cut, whole.subarray(0, whole.length - 100));
    await picker.setInputFiles(cut);
    await expect(problem).toContainText('cut.octoclip-workspace is not an octoclip workspace file:');
    await expect(problem).toContainText('runs past the end of the file (it is cut short)');
    await saveScreen(elsewhere, testInfo, 'workspace-refused');
    await openSection(elsewhere, 'Dataset');
    await expect(elsewhere.getByRole('article', { name: /^Class / })).toHaveCount(0);

    await openSection(elsewhere, 'Workspace');
    await picker.setInputFiles(file);
    await expect(elsewhere.getByTestId('workspace-notice')).toHaveText(
      `Imported 3 classes, ${3 * IMAGES_PER_CLASS} images and 1 adapter from ${download.suggestedFilename()}, and its settings.`,
    );
    await saveScreen(elsewhere, testInfo, 'workspace-imported');
    await elsewhere.reload();
    await openSection(elsewhere, 'Dataset');
    for (const name of DATASET_CLASSES)
      await expect(classCard(elsewhere, name).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);
    await openSection(elsewhere, 'Adapter library');
    await expect(elsewhere.getByRole('listitem', { name: `Adapter ${adapterName}` })).toBeVisible();
    await openSection(elsewhere, 'Train');
    await expect(elsewhere.getByLabel('Iterations')).toHaveValue('3');
    await expect(elsewhere.getByLabel('Batch size')).toHaveValue('4');

    // Importing the same file again adds nothing twice.
    await openSection(elsewhere, 'Workspace');
    await picker.setInputFiles(file);
    await expect(elsewhere.getByTestId('workspace-notice')).toHaveText(
      `Imported 0 classes, 0 images and 0 adapters from ${download.suggestedFilename()}, and its settings.`,
    );
    expect(otherErrors).toEqual([]);
  } finally {
    await other.close();
  }
  expect(errors).toEqual([]);
});
