// The studio guides a person from images to an adapter: every problem that would stop a run is listed
// next to Start (which stays off until there are none), the time a run takes is measured before it
// starts, renames that cannot be done say why beside the field, one run trains at a time per browser
// profile (a second tab shows its progress, and neither tab deletes a class while it trains), and each screen
// fits a 400 px wide window.

import { expect, test, type Page } from '@playwright/test';
import { DATASET_CLASSES, TRY_IMAGE } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, classCard, loadTinyModel, openSection } from './steps';

const checklist = (page: Page) => page.getByRole('list', { name: 'What will train' });
const problem = (page: Page, check: string) => checklist(page).locator(`[data-check="${check}"]`);
const startButton = (page: Page) => page.getByRole('button', { name: 'Start training' });

/** A short run's settings: few steps, small batches, frequent checkpoints. */
async function quickSettings(page: Page, iterations: number): Promise<void> {
  await page.getByLabel('Iterations').fill(String(iterations));
  await page.getByLabel('Batch size').fill('4');
  await page.getByText('Advanced').click();
  await page.getByLabel('Checkpoint every (steps)').fill('2');
}

test('lists every problem next to Start, which stays off until none is left, and estimates the time first', async ({
  page,
}, testInfo) => {
  test.setTimeout(180_000);
  const errors = collectErrors(page);
  await page.goto('/#/train');
  await expect(problem(page, 'model')).toContainText('No model is loaded.');
  await expect(problem(page, 'model').getByRole('link', { name: 'Load one on the Model screen' })).toBeVisible();
  await expect(problem(page, 'classes')).toContainText('at least two classes; the dataset has 0');
  await expect(startButton(page)).toBeDisabled();
  await saveScreen(page, testInfo, 'train-checklist-empty');

  await loadTinyModel(page);
  await page.goto('/#/dataset');
  for (const name of ['empty_a', 'empty_b']) {
    await page.getByLabel('New class name').fill(name);
    await page.getByRole('button', { name: 'Add class' }).click();
    await expect(classCard(page, name)).toBeVisible();
  }
  await openSection(page, 'Train');
  await expect(problem(page, 'model')).toHaveCount(0);
  await expect(problem(page, 'classes')).toHaveCount(0);
  await expect(problem(page, 'empty-classes')).toContainText('“empty_a”, “empty_b” have no images.');
  await expect(startButton(page)).toBeDisabled();

  await openSection(page, 'Dataset');
  for (const name of ['empty_a', 'empty_b'])
    await classCard(page, name)
      .getByRole('button', { name: `Delete class ${name}` })
      .click();
  await addDatasetFolder(page);
  await openSection(page, 'Train');
  await expect(problem(page, 'empty-classes')).toHaveCount(0);

  // A class of one image trains on it and holds none out: nothing to evaluate it on.
  await openSection(page, 'Dataset');
  await page.getByLabel('New class name').fill('solo');
  await page.getByRole('button', { name: 'Add class' }).click();
  await classCard(page, 'solo').getByLabel('Add images to solo').setInputFiles(TRY_IMAGE);
  // Thumbnails are drawn as a class card nears the window.
  await classCard(page, 'solo').scrollIntoViewIfNeeded();
  await expect(classCard(page, 'solo').getByRole('img')).toHaveCount(1);
  await openSection(page, 'Train');
  await expect(problem(page, 'no-held-out')).toContainText('“solo” has one image, which trains: none is held out');
  await expect(startButton(page)).toBeDisabled();
  await openSection(page, 'Dataset');
  await classCard(page, 'solo').getByRole('button', { name: 'Delete class solo' }).click();
  await openSection(page, 'Train');
  await expect(problem(page, 'no-held-out')).toHaveCount(0);

  await page.getByLabel('Blocks n').fill('3');
  await expect(problem(page, 'settings')).toContainText('must divide the rank');
  await expect(startButton(page)).toBeDisabled();
  await page.getByLabel('Blocks n').fill('2');
  await expect(problem(page, 'settings')).toHaveCount(0);

  // Timed steps on this device give the time before Start; SwiftShader is named as a software adapter.
  await expect(page.getByTestId('time-estimate')).toHaveText(
    /^About .+ for 2,000 steps \(\d+\.\d\d s per step on .+, from timed steps, and \d+ held-out evaluations\)\.$/,
  );
  await expect(page.getByTestId('software-adapter')).toContainText('software GPU adapter');
  await expect(checklist(page).getByRole('listitem')).toHaveCount(2);
  await expect(startButton(page)).toBeEnabled();
  console.log(`[guidance] estimate before Start: ${await page.getByTestId('time-estimate').textContent()}`);
  await saveScreen(page, testInfo, 'train-checklist-ready');
  expect(errors).toEqual([]);
});

test('marks an out-of-range shots or percentage at the field with its range, and keeps Start off and the split as it was', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await page.goto('./#/train');
  await expect(startButton(page)).toBeEnabled({ timeout: 60_000 });
  const summary = page.getByTestId('train-data-summary');
  const before = await summary.textContent();

  const shots = page.getByLabel('Shots per class');
  for (const value of ['0', '2.5']) {
    await shots.fill(value);
    await expect(shots).toHaveAttribute('aria-invalid', 'true');
    await expect(shots).toHaveAccessibleDescription(/^A whole number at least 1\./);
    await expect(problem(page, 'field')).toHaveText(
      'Shots per class: A whole number at least 1. Start waits until it is.',
    );
    await expect(startButton(page)).toBeDisabled();
    await expect(summary).toHaveText(before!);
  }
  await saveScreen(page, testInfo, 'train-field-out-of-range');
  // The Dataset screen still shows the split of the last accepted value.
  await openSection(page, 'Dataset');
  for (const name of DATASET_CLASSES) await expect(classCard(page, name).getByRole('img').first()).toBeVisible();
  await openSection(page, 'Train');

  await page.getByRole('radio', { name: 'Use my images: train on X%, hold out the rest' }).check();
  const percent = page.getByLabel('Train on (%)');
  for (const value of ['150', '0']) {
    await percent.fill(value);
    await expect(percent).toHaveAccessibleDescription(/^A whole number between 1 and 99\./);
    await expect(problem(page, 'field')).toContainText('Train on (%): A whole number between 1 and 99.');
    await expect(startButton(page)).toBeDisabled();
  }
  await percent.fill('75');
  await expect(percent).not.toHaveAttribute('aria-invalid');
  await expect(problem(page, 'field')).toHaveCount(0);
  await expect(startButton(page)).toBeEnabled();
  expect(errors).toEqual([]);
});

test('refuses a class name that is taken or empty beside the field, keeping the name', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await addDatasetFolder(page);
  const [first, second] = DATASET_CLASSES;
  const field = page.getByRole('textbox', { name: `Name of class ${second}` });
  await field.fill(first);
  await field.press('Enter');
  const card = classCard(page, second);
  await expect(card.getByRole('alert')).toHaveText(
    `There is already a class named “${first}”. The name stays “${second}”.`,
  );
  await expect(field).toHaveValue(second);
  await expect(card.getByText(`a photo of a ${second}.`)).toBeVisible();
  const names = await page
    .getByRole('textbox', { name: /^Name of class/ })
    .evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value));
  expect(names).toEqual(DATASET_CLASSES);
  await expect(page.getByTestId('dataset-problem')).toHaveCount(0);
  await saveScreen(page, testInfo, 'dataset-rename-refused');

  await field.fill('  ');
  await field.press('Enter');
  await expect(card.getByRole('alert')).toHaveText(`A class needs a name. The name stays “${second}”.`);
  await expect(field).toHaveValue(second);

  // A good name clears the message and renames.
  await field.fill('deux');
  await field.press('Enter');
  const renamed = classCard(page, 'deux');
  await expect(renamed.getByText('a photo of a deux.')).toBeVisible();
  await expect(renamed.getByRole('alert')).toHaveCount(0);
  await page.reload();
  await expect(page.getByRole('textbox', { name: 'Name of class deux' })).toBeVisible();
  expect(errors).toEqual([]);
});

test('trains one run at a time per browser profile: a second tab shows its progress, never "interrupted", and no tab deletes a class meanwhile', async ({
  context,
}, testInfo) => {
  test.setTimeout(180_000);
  const first = await context.newPage();
  const errors = collectErrors(first);
  await loadTinyModel(first);
  await addDatasetFolder(first);
  await first.goto('/#/train');
  await quickSettings(first, 400);
  await startButton(first).click();
  const run = first.getByRole('article', { name: 'Training run' });
  // Start is below the settings: the new run's card is brought into view.
  await expect(run).toBeInViewport();
  await expect(run).toContainText(/checkpoint at step \d+/, { timeout: 90_000 });

  const second = await context.newPage();
  await second.goto('/#/train');
  const elsewhere = second.getByRole('region', { name: 'Training in another tab' });
  await expect(elsewhere.getByTestId('elsewhere-progress')).toHaveText(/^step \d+ of 400/);
  await expect(second.getByRole('region', { name: 'Interrupted training run' })).toHaveCount(0);
  await expect(problem(second, 'elsewhere')).toContainText('Training in another tab');
  await expect(startButton(second)).toBeDisabled();
  // Live: the step it shows moves on.
  const shownStep = async () =>
    Number(/step (\d+)/.exec((await elsewhere.getByTestId('elsewhere-progress').textContent()) ?? '')?.[1] ?? 0);
  const before = await shownStep();
  await expect.poll(shownStep, { timeout: 60_000 }).toBeGreaterThan(before);
  await saveScreen(second, testInfo, 'train-other-tab');

  // The run's classes stay while it trains: Delete is off in both tabs, and a note says why.
  const deleteClass = (page: Page) => page.getByRole('button', { name: `Delete class ${DATASET_CLASSES[0]}` });
  await openSection(second, 'Dataset');
  await expect(deleteClass(second)).toBeDisabled();
  await expect(deleteClass(second)).toHaveAccessibleDescription(/training on these classes in another tab/);
  await openSection(first, 'Dataset');
  await expect(deleteClass(first)).toBeDisabled();
  await expect(deleteClass(first)).toHaveAccessibleDescription(/training on these classes now/);
  await saveScreen(first, testInfo, 'dataset-while-training');
  await openSection(first, 'Train');

  await run.getByRole('button', { name: 'Cancel' }).click();
  await expect(run.getByText('Cancelled', { exact: true })).toBeVisible({ timeout: 60_000 });
  await expect(deleteClass(second)).toBeEnabled();
  await openSection(second, 'Train');
  await expect(elsewhere).toHaveCount(0);
  await expect(second.getByRole('region', { name: 'Interrupted training run' })).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('after training, "try it" opens Try it on the new adapter, and a second run gets its own name', async ({
  page,
}) => {
  test.setTimeout(180_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);
  await page.goto('/#/train');
  await quickSettings(page, 2);
  const run = page.getByRole('article', { name: 'Training run' });
  const names: string[] = [];
  const trainedName = page.getByTestId('trained-adapter-name');
  for (let i = 0; i < 2; i++) {
    await startButton(page).click();
    await expect(run.getByText('Finished', { exact: true })).toBeVisible({ timeout: 120_000 });
    // The first run's "Finished" can still show just after the second Start: wait for the second's adapter.
    if (i > 0) await expect(trainedName).not.toHaveText(names[0], { timeout: 120_000 });
    names.push((await trainedName.textContent()) ?? '');
  }
  expect(names).toEqual(['Block-LoRA r2 n2 · 3 classes · 4-shot', 'Block-LoRA r2 n2 · 3 classes · 4-shot (2)']);
  await page.getByRole('link', { name: 'try it on an image' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Try it' })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'Adapter', exact: true }).locator('option:checked')).toHaveText(
    names[1],
  );
  expect(errors).toEqual([]);
});
