// A user's way through the studio, on one page: load a model, build a dataset from class folders (with
// a corrupt image and a text file among them), train and watch the charts, pause, reload in the middle
// of the run and resume it from its checkpoint, evaluate, try images, and find everything again after a
// reload; download the adapter (and its PEFT export), check the files, import it back, rename, delete.

import { expect, test, type Page } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeAdapterFile, encodeAdapterFile } from '../src/adapters/adapter-file';
import { parseSafetensorsHeader } from '../src/model/safetensors';
import { defaultAdapterSettings, trainableParameterCount } from '../src/adapters/settings';
import { parseClipConfig } from '../src/model/config';
import {
  CORRUPT_IMAGE,
  TRY_IMAGE,
  DATASET_CLASSES,
  DATASET_DIR,
  EXTRA_IMAGES_DIR,
  IMAGES_PER_CLASS,
  NOT_AN_IMAGE,
  TINY_MODEL_DIR,
} from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { classCard as classCardOf, loadTinyModel, openSection } from './steps';

test.describe.configure({ mode: 'serial' });

const SHOTS = 4;
const ITERATIONS = 60;
const CHECKPOINT_EVERY = 5;
let page: Page;
let errors: string[];

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  errors = collectErrors(page);
  await loadTinyModel(page);
});

test.afterAll(async () => {
  await page.close();
});

function classCard(name: string) {
  return classCardOf(page, name);
}

function chart(name: 'Loss' | 'Accuracy') {
  return page.getByRole('img', { name: new RegExp(`^${name}:`) });
}

/** Try it's adapter choice (the Evaluate screen has an "Adapter to evaluate"). */
function adapterChoice() {
  return page.getByRole('combobox', { name: 'Adapter', exact: true });
}

async function chartPoints(name: 'Loss' | 'Accuracy'): Promise<number> {
  return Number(await chart(name).getAttribute('data-points'));
}

test('builds a dataset from class folders, skipping a corrupt image and a text file', async ({}, testInfo) => {
  await page.goto('/#/dataset');
  await page.getByLabel('Choose a folder').setInputFiles(DATASET_DIR);

  for (const name of DATASET_CLASSES) {
    await expect(classCard(name).getByTestId('class-count')).toHaveText(
      `${IMAGES_PER_CLASS} images · ${SHOTS} train · ${IMAGES_PER_CLASS - SHOTS} held out`,
    );
    await expect(classCard(name).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);
    await expect(classCard(name)).toContainText(`a photo of a ${name}.`);
  }
  const skipped = page.getByRole('list', { name: 'Skipped files' });
  await expect(skipped.getByRole('listitem')).toHaveCount(2);
  await expect(skipped).toContainText(`${CORRUPT_IMAGE}: could not be decoded`);
  await expect(skipped).toContainText(`${NOT_AN_IMAGE}: not an image (text/plain)`);
  await expect(page.getByTestId('split-summary')).toHaveText(
    `${3 * SHOTS} images train, ${3 * (IMAGES_PER_CLASS - SHOTS)} are held out for evaluation.`,
  );
  // Classes in code-point order, as the CLI's loader labels them.
  const classNames = await page
    .getByRole('textbox', { name: /^Name of class/ })
    .evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value));
  expect(classNames).toEqual(DATASET_CLASSES);
  await saveScreen(page, testInfo, 'dataset');

  // Images dropped onto a class card join that class.
  const first = DATASET_CLASSES[0];
  const extras = await Promise.all(
    [0, 1].map(async (i) => {
      const name = `${first}-extra-${i}.png`;
      return { name, base64: (await readFile(path.join(EXTRA_IMAGES_DIR, name))).toString('base64') };
    }),
  );
  const dataTransfer = await page.evaluateHandle((files) => {
    const transfer = new DataTransfer();
    for (const { name, base64 } of files)
      transfer.items.add(
        new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], name, { type: 'image/png' }),
      );
    return transfer;
  }, extras);
  await classCard(first)
    .getByRole('group', { name: `Drop images onto ${first}` })
    .dispatchEvent('drop', { dataTransfer });
  await expect(classCard(first).getByRole('img')).toHaveCount(IMAGES_PER_CLASS + 2);

  // A new class, renamed, then deleted with its image.
  await page.getByLabel('New class name').fill('three');
  await page.getByRole('button', { name: 'Add class' }).click();
  await page.getByLabel('Name of class three').fill('drei');
  await page.getByLabel('Name of class three').press('Enter');
  await expect(classCard('drei')).toContainText('a photo of a drei.');
  await classCard('drei').getByRole('button', { name: 'Delete class drei' }).click();
  await expect(classCard('drei')).toHaveCount(0);

  // The extra images are taken out again, so each class has the same count.
  for (const { name } of extras)
    await classCard(first)
      .getByRole('button', { name: `Delete image ${name}` })
      .click();
  await expect(classCard(first).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);
  expect(errors).toEqual([]);
});

test('trains with live charts, pauses and resumes, and continues from its checkpoint after a reload', async ({}, testInfo) => {
  test.setTimeout(240_000);
  await page.goto('/#/train');
  const config = parseClipConfig(await readFile(path.join(TINY_MODEL_DIR, 'config.json'), 'utf8'));
  const expectedParameters = trainableParameterCount(config, defaultAdapterSettings(config));
  await expect(page.getByTestId('trainable-parameters')).toHaveText(expectedParameters.toLocaleString('en-US'));
  await expect(page.getByTestId('expected-memory')).toHaveText(/^\d+(\.\d)? (KiB|MiB)$/);

  await page.getByLabel('Iterations').fill(String(ITERATIONS));
  await page.getByLabel('Batch size').fill('4');
  await page.getByLabel('Learning rate', { exact: true }).fill('0.02');
  await page.getByText('Advanced').click();
  // Random crops of 8-pixel digits keep a pixel or two of the digit: train on whole images.
  await page.getByLabel('Augment (random crops and flips)').uncheck();
  await page.getByLabel('Checkpoint every (steps)').fill(String(CHECKPOINT_EVERY));
  await page.getByLabel('Held-out evaluation every (steps)').fill('20');
  // An impossible setting is explained before anything starts.
  await page.getByLabel('Blocks n').fill('3');
  await expect(page.getByTestId('settings-problem')).toContainText('must divide the rank');
  await page.getByLabel('Blocks n').fill('2');
  await expect(page.getByTestId('trainable-parameters')).toHaveText(expectedParameters.toLocaleString('en-US'));

  await page.getByRole('button', { name: 'Start training' }).click();
  await expect.poll(() => chartPoints('Loss'), { timeout: 90_000 }).toBeGreaterThanOrEqual(2);

  const run = page.getByRole('article', { name: 'Training run' });
  await run.getByRole('button', { name: 'Pause' }).click();
  await expect(run.getByText('Paused', { exact: true })).toBeVisible();
  await expect(page.getByTestId('run-status')).toHaveText('Paused. The run resumes from this step.');
  const pausedPoints = await chartPoints('Loss');
  await expect(run).toContainText(`checkpoint at step ${pausedPoints / 2}`); // pausing stores a checkpoint
  await saveScreen(page, testInfo, 'train-paused');
  await run.getByRole('button', { name: 'Resume' }).click();
  await expect.poll(() => chartPoints('Loss')).toBeGreaterThan(pausedPoints);

  // A reload in the middle of the run offers to resume it from its last stored checkpoint.
  await page.reload();
  const banner = page.getByRole('region', { name: 'Interrupted training run' });
  await expect(banner.getByTestId('interrupted-run')).toHaveText(
    new RegExp(`^A run was interrupted at step \\d+ of ${ITERATIONS}$`),
  );
  const interruptedAt = Number(
    /step (\d+)/.exec((await banner.getByTestId('interrupted-run').textContent()) ?? '')![1],
  );
  expect(interruptedAt).toBeGreaterThanOrEqual(pausedPoints / 2);
  await saveScreen(page, testInfo, 'train-interrupted');
  await banner.getByRole('button', { name: 'Resume' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Train' })).toBeVisible();

  await expect(run.getByText('Finished', { exact: true })).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('trained-adapter-name')).toHaveText(`Block-LoRA r2 n2 · 3 classes · ${SHOTS}-shot`);
  // Steps up to the checkpoint come from storage, the rest from the resumed run: each step once, raw and trend.
  await expect(chart('Loss')).toHaveAttribute('data-points', String(2 * ITERATIONS));
  await expect(chart('Accuracy')).toHaveAccessibleName(new RegExp(`held out \\d+\\.\\d% at step ${ITERATIONS}$`));
  await expect(banner).toHaveCount(0);
  // Each chart's legend names its series apart.
  await expect(page.getByRole('list', { name: 'Loss legend' }).getByRole('listitem')).toHaveText([
    'batch loss',
    'trend',
  ]);
  await expect(page.getByRole('list', { name: 'Accuracy legend' }).getByRole('listitem')).toHaveText([
    'training batches (trend)',
    'held-out images',
  ]);
  await saveScreen(page, testInfo, 'train-finished');
  expect(errors).toEqual([]);
});

/** Accuracy shown as "58.3%", as a fraction. */
function fraction(text: string | null): number {
  return Number(/([\d.]+)%/.exec(text ?? '')![1]) / 100;
}

test('evaluates the adapter against zero-shot: per class, confusion matrix, mistakes', async ({}, testInfo) => {
  await page.getByRole('link', { name: 'see how it does' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Evaluate' })).toBeVisible();
  const heldOut = 3 * (IMAGES_PER_CLASS - SHOTS);
  await expect(page.getByTestId('evaluation-source')).toHaveText(
    `On ${heldOut} held-out images of 3 classes, measured as training finished.`,
  );
  const zeroShot = fraction(await page.getByTestId('zero-shot-accuracy').textContent());
  const adapted = fraction(await page.getByTestId('adapted-accuracy').textContent());

  const perClass = page.getByRole('table', { name: 'Per-class accuracy' });
  await expect(perClass.getByRole('rowheader')).toHaveText(DATASET_CLASSES);
  const confusion = page.getByRole('table', { name: 'Confusion matrix' });
  const counts = (await confusion.locator('tbody').getByRole('cell').allTextContents()).map(Number);
  expect(counts).toHaveLength(9);
  expect(counts.reduce((a, b) => a + b, 0)).toBe(heldOut);
  const correct = counts[0] + counts[4] + counts[8];
  expect(correct / heldOut).toBeCloseTo(adapted, 3);
  await expect(page.getByRole('list', { name: 'Misclassified images' }).getByRole('listitem')).toHaveCount(
    heldOut - correct,
  );
  await saveScreen(page, testInfo, 'evaluate');

  // Evaluating again from the library's file gives the numbers the training run measured.
  await page.getByRole('button', { name: 'Evaluate on held-out images' }).click();
  await expect(page.getByTestId('evaluation-source')).toHaveText(
    `On ${heldOut} held-out images of 3 classes, measured from the adapter file.`,
  );
  expect(fraction(await page.getByTestId('adapted-accuracy').textContent())).toBeCloseTo(adapted, 3);
  expect(fraction(await page.getByTestId('zero-shot-accuracy').textContent())).toBeCloseTo(zeroShot, 3);
  expect(errors).toEqual([]);
});

test('tries an image with and without the adapter: picked, pasted, and from the camera', async ({}, testInfo) => {
  await openSection(page, 'Try it');
  await adapterChoice().selectOption({ label: `Block-LoRA r2 n2 · 3 classes · ${SHOTS}-shot` });
  await page.getByLabel('Choose an image').setInputFiles(TRY_IMAGE);
  const table = page.getByRole('table', { name: 'Class probabilities' });
  await expect(table.getByRole('rowheader')).toHaveText(DATASET_CLASSES);
  await expect(table.getByRole('columnheader')).toHaveText(['Class', 'Without adapter', 'With adapter']);
  for (const column of [1, 2]) {
    const cells = await table
      .getByRole('row')
      .locator(`td:nth-child(${column + 1})`)
      .allTextContents();
    const total = cells.map((cell) => fraction(cell)).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 1);
  }
  await expect(page.getByTestId('prediction-summary')).toHaveText(
    /^With the adapter: (one|two|zero)\. Without: (one|two|zero)\.$/,
  );
  await saveScreen(page, testInfo, 'try');

  // A pasted image is classified the same way, here without an adapter (zero-shot on the dataset's classes).
  await adapterChoice().selectOption({ label: 'None: zero-shot on the dataset’s classes' });
  const png = (await readFile(TRY_IMAGE)).toString('base64');
  await page.evaluate((base64) => {
    const transfer = new DataTransfer();
    transfer.items.add(
      new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], 'pasted.png', { type: 'image/png' }),
    );
    window.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer }));
  }, png);
  await expect(table.getByRole('columnheader')).toHaveText(['Class', 'Without adapter']);
  await expect(page.getByTestId('prediction-summary')).toHaveText(/^Zero-shot: (one|two|zero)\.$/);

  // And so is a photo from the camera (Chromium's synthetic one here).
  const image = page.getByRole('img', { name: 'The image being classified' });
  const pastedUrl = await image.getAttribute('src');
  await page.getByRole('button', { name: 'Use the camera' }).click();
  await expect
    .poll(() => page.getByLabel('Camera preview').evaluate((video) => (video as HTMLVideoElement).videoWidth))
    .toBeGreaterThan(0);
  await page.getByRole('button', { name: 'Take photo' }).click();
  await expect(image).not.toHaveAttribute('src', pastedUrl!);
  await expect(page.getByTestId('prediction-summary')).toHaveText(/^Zero-shot: (one|two|zero)\.$/);
  await saveScreen(page, testInfo, 'try-camera');
  await page.getByRole('button', { name: 'Close camera' }).click();
  expect(errors).toEqual([]);
});

test('keeps the dataset and the adapter across a reload; downloads, checks and imports adapter files', async ({}, testInfo) => {
  await page.reload();
  await openSection(page, 'Dataset');
  for (const name of DATASET_CLASSES) await expect(classCard(name).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);

  await openSection(page, 'Adapter library');
  const adapterName = `Block-LoRA r2 n2 · 3 classes · ${SHOTS}-shot`;
  const item = page.getByRole('listitem', { name: `Adapter ${adapterName}` });
  await expect(item).toBeVisible();
  const shownAccuracy = fraction(await item.getByTestId('adapter-accuracy').textContent());

  // The octoclip file: every adapted matrix's tensors, and the metadata to use it again.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: `Download ${adapterName}` }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('block-lora-r2-n2-3-classes-4-shot.octoclip.safetensors');
  const file = await readFile(await download.path());
  const { meta, tensors } = decodeAdapterFile(new Uint8Array(file), download.suggestedFilename());
  expect(meta).toMatchObject({
    name: adapterName,
    method: 'block-lora',
    rank: 2,
    blocks: 2,
    alpha: 1,
    baseModel: 'local/tiny',
    classNames: DATASET_CLASSES,
    promptTemplate: 'a photo of a {}.',
  });
  expect(meta.targets).toEqual(['q_proj', 'k_proj', 'v_proj']);
  expect(meta.layers).toEqual({ text: [0, 1], vision: [0, 1, 2] });
  expect(meta.training).toMatchObject({
    shots: SHOTS,
    iterations: ITERATIONS,
    batchSize: 4,
    lr: 0.02,
    seed: 1,
    augment: false,
  });
  expect(meta.metrics.heldOutAccuracy).toBeCloseTo(shownAccuracy, 3);
  expect(tensors.size).toBe(2 * 3 * (2 + 3));
  expect(tensors.get('text_model.encoder.layers.0.self_attn.q_proj.block_lora_A')!.shape).toEqual([1, 32]);
  expect(tensors.get('vision_model.encoder.layers.2.self_attn.v_proj.block_lora_B')!.shape).toEqual([2, 48, 1]);
  // Training moved the up-projections away from their zero start.
  expect(tensors.get('vision_model.encoder.layers.2.self_attn.v_proj.block_lora_B')!.data.some((v) => v !== 0)).toBe(
    true,
  );

  // The PEFT export: LoRA of rank r/n, one pair of tensors per adapted matrix.
  const [peftConfig] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: `Download adapter_config.json (PEFT) of ${adapterName}` }).click(),
  ]);
  const config = JSON.parse(await readFile(await peftConfig.path(), 'utf8'));
  expect(config).toMatchObject({ peft_type: 'LORA', r: 1, base_model_name_or_path: 'local/tiny' });
  expect(config.target_modules).toHaveLength(15);
  const [peftWeights] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: `Download adapter_model.safetensors (PEFT) of ${adapterName}` }).click(),
  ]);
  expect(peftWeights.suggestedFilename()).toBe('adapter_model.safetensors');
  const weights = new Uint8Array(await readFile(await peftWeights.path()));
  const header = parseSafetensorsHeader(weights, weights.length);
  expect(header.tensors.size).toBe(30);
  expect(
    header.tensors.get('base_model.model.text_model.encoder.layers.1.self_attn.k_proj.lora_B.weight')!.shape,
  ).toEqual([32, 1]);

  // Importing the downloaded file adds it again under its own name (made unique); the two compare side by side.
  await page
    .getByLabel('Import an adapter file')
    .setInputFiles({ name: download.suggestedFilename(), mimeType: 'application/octet-stream', buffer: file });
  await expect(page.getByText(`Imported “${adapterName} (2)”.`)).toBeVisible();
  await expect(page.getByRole('list', { name: 'Adapters' }).getByRole('listitem')).toHaveCount(2);
  for (const checkbox of await page.getByRole('checkbox', { name: 'Compare' }).all()) await checkbox.check();
  const comparison = page.getByRole('table', { name: 'Adapter comparison' });
  await expect(comparison.getByRole('row', { name: /Held-out accuracy/ }).getByRole('cell')).toHaveText([/%$/, /%$/]);
  await saveScreen(page, testInfo, 'library');

  // An adapter made for another base model is refused, and says which model it needs.
  const foreign = encodeAdapterFile(
    { ...meta, baseModel: 'someone/other-clip', baseModelFingerprint: '0123456789abcdef' },
    tensors,
  );
  await page.getByLabel('Import an adapter file').setInputFiles({
    name: 'foreign.octoclip.safetensors',
    mimeType: 'application/octet-stream',
    buffer: Buffer.from(foreign),
  });
  await expect(page.getByTestId('library-problem')).toContainText('was trained on someone/other-clip');
  await expect(page.getByTestId('library-problem')).toContainText('load someone/other-clip to use it');
  // So is a file that is not an adapter at all.
  await page.getByLabel('Import an adapter file').setInputFiles({
    name: 'notes.safetensors',
    mimeType: 'application/octet-stream',
    buffer: Buffer.from('not a safetensors file'),
  });
  await expect(page.getByTestId('library-problem')).toContainText('notes.safetensors: not an octoclip adapter');
  await expect(page.getByRole('list', { name: 'Adapters' }).getByRole('listitem')).toHaveCount(2);
  await saveScreen(page, testInfo, 'library-import-refused');

  // Rename the imported copy, try it from the library, then delete it.
  await page.getByLabel(`Name of adapter ${adapterName} (2)`).fill('digits copy');
  await page.getByLabel(`Name of adapter ${adapterName} (2)`).press('Enter');
  const copy = page.getByRole('listitem', { name: 'Adapter digits copy' });
  await copy.getByRole('link', { name: 'Try digits copy' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Try it' })).toBeVisible();
  await expect(adapterChoice().locator('option:checked')).toHaveText('digits copy');
  await page.goBack();
  await copy.getByRole('button', { name: 'Delete digits copy' }).click();
  await expect(page.getByRole('list', { name: 'Adapters' }).getByRole('listitem')).toHaveCount(1);
  await page.reload();
  await expect(page.getByRole('list', { name: 'Adapters' }).getByRole('listitem')).toHaveCount(1);
  expect(errors).toEqual([]);
});
