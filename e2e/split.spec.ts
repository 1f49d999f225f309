// "Use my images: train on X%, hold out the rest": the studio's split is the CLI's `--holdout` for the
// same folder and seed (the CLI's own loader and split run here on the same files), the adapter records
// it, and Evaluate rebuilds the same held-out images from the adapter even after the form changes.

import { expect, test } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeAdapterFile } from '../src/adapters/adapter-file';
import { loadLabelledImages } from '../src/cli/images';
import { holdoutSplit } from '../src/common/split';
import { DATASET_CLASSES, DATASET_DIR } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, classCard, loadTinyModel, openSection } from './steps';

const HOLDOUT = 0.25;
const SEED = 3;

test('a held-out percentage splits as octoclip train --holdout does, and Evaluate rebuilds it from the adapter', async ({
  page,
}, testInfo) => {
  test.setTimeout(180_000);
  const errors = collectErrors(page);
  await loadTinyModel(page);
  await addDatasetFolder(page);

  await page.getByRole('radio', { name: 'Use my images: train on X%, hold out the rest' }).check();
  await expect(page.getByLabel('Train on (%)')).toHaveValue('85');
  await page.getByLabel('Train on (%)').fill(String(100 * (1 - HOLDOUT)));
  await page.getByLabel('Seed').fill(String(SEED));

  // The CLI's loader and split on the same folder.
  const data = await loadLabelledImages(DATASET_DIR);
  expect(data.classNames).toEqual(DATASET_CLASSES);
  const cli = holdoutSplit(data.labels, HOLDOUT, SEED, data.classNames);
  for (const [label, name] of DATASET_CLASSES.entries()) {
    const expected = cli.heldOut
      .filter((i) => data.labels[i] === label)
      .map((i) => path.basename(data.paths[i]))
      .sort();
    const shown = (
      await classCard(page, name)
        .locator('li.thumbnail.held-out img')
        .evaluateAll((nodes) => nodes.map((n) => n.getAttribute('alt')!))
    ).sort();
    expect(shown, `held-out images of ${name}`).toEqual(expected);
  }
  const heldOut = cli.heldOut.length;
  await expect(page.getByTestId('split-summary')).toHaveText(
    `${cli.support.length} images train, ${heldOut} are held out for evaluation.`,
  );
  await saveScreen(page, testInfo, 'dataset-holdout-split');

  await page.goto('./#/train');
  await expect(page.getByTestId('train-data-summary')).toContainText(
    `${cli.support.length} training and ${heldOut} held-out images (75% of each class trains)`,
  );
  await page.getByLabel('Iterations').fill('2');
  await page.getByLabel('Batch size').fill('4');
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByRole('article', { name: 'Training run' }).getByText('Finished', { exact: true })).toBeVisible({
    timeout: 120_000,
  });
  const adapterName = (await page.getByTestId('trained-adapter-name').textContent())!;

  await openSection(page, 'Adapter library');
  const item = page.getByRole('listitem', { name: `Adapter ${adapterName}` });
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    item.getByRole('button', { name: `Download ${adapterName}` }).click(),
  ]);
  const { meta } = decodeAdapterFile(
    new Uint8Array(await readFile(await download.path())),
    download.suggestedFilename(),
  );
  expect(meta.training).toMatchObject({ holdout: HOLDOUT, seed: SEED, shots: Math.round(cli.support.length / 3) });

  // Back to shots in the form: Evaluate still takes the adapter's own split.
  await openSection(page, 'Dataset');
  await page.getByRole('radio', { name: 'N images per class (few-shot)' }).check();
  await openSection(page, 'Evaluate');
  await page.getByRole('button', { name: 'Evaluate on held-out images' }).click();
  await expect(page.getByTestId('evaluation-source')).toHaveText(
    `On ${heldOut} held-out images of 3 classes, measured from the adapter file.`,
  );
  expect(errors).toEqual([]);
});
