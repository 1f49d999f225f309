// The Model screen: a download from the (stand-in) Hugging Face Hub that survives an interrupted
// connection, a cache that loads the model again offline, local files, and a broken model file; revisions,
// tokens, gated and pickle-only repos, sharded checkpoints from the Hub and from a folder, the offered models.

import { expect, test, type Page } from '@playwright/test';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BROKEN_MODEL_DIR, HUB_REPO, MODEL_FILE_NAMES, TINY_MODEL_DIR } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { shardCheckpoint } from '../test/helpers/shards';
import { FAKE_HUB_COMMIT, fakeHub, slowHub } from './hub';

function loadedCard(page: Page) {
  return page.getByRole('article', { name: 'Loaded model' });
}

test('downloads a model from the Hub, resumes an interrupted download, and loads it from the cache offline', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  const hub = await fakeHub(page, HUB_REPO);
  hub.interruptNext('model.safetensors');
  await page.goto('/#/model');
  await expect(page.getByRole('heading', { level: 1, name: 'Model' })).toBeVisible();

  await page.getByLabel('Repository').fill(HUB_REPO);
  await page.getByRole('button', { name: 'Download and load' }).click();

  // The connection drops halfway through the weights: the part received is kept.
  const problem = page.getByRole('alert').filter({ hasText: 'The model could not be loaded' });
  await expect(problem).toContainText('interrupted');
  await expect(page.getByRole('article', { name: 'Model cache' })).toContainText('Partly downloaded');
  await saveScreen(page, testInfo, 'model-download-interrupted');

  const weights = await readFile(path.join(TINY_MODEL_DIR, 'model.safetensors'));
  await problem.getByRole('button', { name: 'Retry download' }).click();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText(HUB_REPO);
  // The retry asked only for the rest of the file.
  const weightRequests = hub.requests.filter((r) => r.file === 'model.safetensors');
  expect(weightRequests).toHaveLength(2);
  expect(weightRequests[0].range).toBeNull();
  expect(weightRequests[1].range).toBe(`bytes=${weights.length >> 1}-`);
  expect(hub.requests.filter((r) => r.file === 'config.json')).toHaveLength(1);

  await expect(loadedCard(page)).toContainText('3 layers, width 48, 32 px images in 8 px patches');
  await expect(page.getByTestId('cache-size')).toContainText(/Models in this browser: \d+(\.\d)? KiB/);
  await saveScreen(page, testInfo, 'model-loaded');

  // A second visit without a connection loads the model from the browser's storage.
  hub.goOffline();
  const requestsBefore = hub.requests.length;
  await page.reload();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText(HUB_REPO);
  expect(hub.requests.length).toBe(requestsBefore);

  await page.getByRole('button', { name: 'Clear model cache' }).click();
  await page.getByRole('group', { name: 'Confirm' }).getByRole('button', { name: 'Clear model cache' }).click(); // it asks first
  await expect(page.getByTestId('cache-size')).toContainText('Models in this browser: 0 bytes');
  expect(errors).toEqual([]);
});

test('loads local model files, and refuses a broken model file with the loader’s message, keeping the loaded model', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  await page.goto('/#/model');
  const picker = page.getByLabel('Choose model files');

  await page.getByLabel('Name for this model').fill('tiny');
  await picker.setInputFiles(MODEL_FILE_NAMES.map((name) => path.join(TINY_MODEL_DIR, name)));
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText('local/tiny');

  await page.getByLabel('Name for this model').fill('broken');
  await picker.setInputFiles(MODEL_FILE_NAMES.map((name) => path.join(BROKEN_MODEL_DIR, name)));
  const whole = (await readFile(path.join(TINY_MODEL_DIR, 'model.safetensors'))).length;
  await expect(page.getByTestId('model-problem')).toContainText(
    `model.safetensors: incomplete: ${Math.floor(whole / 2)} of ${whole} bytes`,
  );
  // The model that was loaded stays loaded, and the broken files were not kept.
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText('local/tiny');
  await expect(page.getByRole('article', { name: 'Model cache' })).not.toContainText('local/broken');
  await saveScreen(page, testInfo, 'model-broken-file');
  expect(errors).toEqual([]);
});

test('shows bytes, speed and time left over a slow connection, stops on request and resumes', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  await slowHub(page, HUB_REPO, 128 * 1024);
  await page.goto('/#/model');
  await page.getByLabel('Repository').fill(HUB_REPO);
  await page.getByRole('button', { name: 'Download and load' }).click();

  const progress = page.getByRole('progressbar', { name: /^Downloading model\.safetensors \(file 2 of 5\)$/ });
  await expect(progress).toHaveAttribute(
    'aria-valuetext',
    /^\d+(\.\d)? KiB of 613\.4 KiB · \d+(\.\d)? KiB\/s · \d+ s left$/,
  );
  await saveScreen(page, testInfo, 'model-downloading');

  await page.getByRole('button', { name: 'Stop download' }).click();
  const problem = page.getByRole('alert').filter({ hasText: 'The model could not be loaded' });
  await expect(problem).toContainText(`Download of ${HUB_REPO} stopped. The part received is kept.`);
  await problem.getByRole('button', { name: 'Retry download' }).click();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText(HUB_REPO, { timeout: 60_000 });

  const weightRequests = await page.evaluate(() =>
    (window as unknown as { hubRequests: { file: string; range: string | null }[] }).hubRequests.filter(
      (r) => r.file === 'model.safetensors',
    ),
  );
  expect(weightRequests).toHaveLength(2);
  expect(weightRequests[1].range).toMatch(/^bytes=[1-9]\d*-$/);
  expect(errors).toEqual([]);
});

const TEXT_FILE_NAMES = MODEL_FILE_NAMES.filter((name) => name !== 'model.safetensors');

/** The tiny model's text files and its weights in two shards with their index. */
async function shardedModelFiles(): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for (const name of TEXT_FILE_NAMES) files[name] = await readFile(path.join(TINY_MODEL_DIR, name));
  return { ...files, ...shardCheckpoint(await readFile(path.join(TINY_MODEL_DIR, 'model.safetensors'))) };
}

test('downloads a private repo at a revision with a token: 401 explained first, shards from the pinned commit, no empty cache entry', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  const files = await shardedModelFiles();
  const hub = await fakeHub(page, HUB_REPO, {
    files,
    refs: { main: 'f'.repeat(40), v1: FAKE_HUB_COMMIT },
    token: 'hf_e2e',
  });
  await page.goto('/#/model');
  await page.getByLabel('Repository').fill(`${HUB_REPO}@v1`);
  await page.getByRole('button', { name: 'Download and load' }).click();

  const problem = page.getByTestId('model-problem');
  await expect(problem).toContainText(`${HUB_REPO} needs a token (401): it is gated or private, or does not exist.`);
  await expect(problem).toContainText('paste a token in the Access token field');
  // A failed attempt leaves nothing in the cache (no "0 bytes · Partly downloaded" entry).
  await expect(page.getByRole('article', { name: 'Model cache' })).toContainText('Nothing cached yet.');
  await saveScreen(page, testInfo, 'model-needs-token');

  await page.getByLabel('Access token').fill('hf_e2e');
  await page.getByRole('button', { name: 'Download and load' }).click();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText(`${HUB_REPO}@v1`);
  await expect(loadedCard(page)).toContainText(FAKE_HUB_COMMIT);
  const sent = hub.requests.filter((r) => r.authorization === 'Bearer hf_e2e');
  expect(sent[0]).toMatchObject({ file: 'config.json', revision: 'v1' });
  expect(sent.slice(1).every((r) => r.revision === FAKE_HUB_COMMIT)).toBe(true);
  const shardNames = Object.keys(files).filter((name) => /^model-\d+-of-\d+\.safetensors$/.test(name));
  expect(sent.map((r) => r.file)).toEqual(
    expect.arrayContaining(['model.safetensors', 'model.safetensors.index.json', ...shardNames]),
  );
  await saveScreen(page, testInfo, 'model-revision-loaded');

  // The token stays in this browser; the model loads again from the cache without the Hub.
  hub.goOffline();
  await page.reload();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText(`${HUB_REPO}@v1`);
  await expect(page.getByLabel('Access token')).toHaveValue('hf_e2e');
  expect(errors).toEqual([]);
});

test('explains a gated repo (403), an unknown revision and a pickle-only repo, keeping nothing', async ({ page }) => {
  const errors = collectErrors(page);
  await page.goto('/#/model');
  const problem = page.getByTestId('model-problem');
  const tryRepo = async (spec: string) => {
    await page.getByLabel('Repository').fill(spec);
    await page.getByRole('button', { name: 'Download and load' }).click();
  };

  await fakeHub(page, HUB_REPO, { gated: true });
  await tryRepo(HUB_REPO);
  await expect(problem).toContainText(
    `The Hugging Face Hub refused access to ${HUB_REPO} (403): accept the licence on https://huggingface.co/${HUB_REPO}`,
  );

  await page.unrouteAll();
  await fakeHub(page, HUB_REPO);
  await tryRepo(`${HUB_REPO}@no-such-branch`);
  await expect(problem).toContainText(
    `${HUB_REPO} has no branch, tag or commit “no-such-branch” on the Hugging Face Hub.`,
  );

  await page.unrouteAll();
  const pickle: Record<string, Uint8Array> = { 'pytorch_model.bin': new TextEncoder().encode('pickle') };
  for (const name of TEXT_FILE_NAMES) pickle[name] = await readFile(path.join(TINY_MODEL_DIR, name));
  await fakeHub(page, HUB_REPO, { files: pickle });
  await tryRepo(HUB_REPO);
  await expect(problem).toContainText(
    `${HUB_REPO} on the Hugging Face Hub has only pytorch_model.bin, a pickle file, which octoclip never loads`,
  );
  await expect(problem).toContainText('safe_serialization=True');
  await expect(page.getByRole('article', { name: 'Model cache' })).toContainText('Nothing cached yet.');
  expect(errors).toEqual([]);
});

test('loads a sharded checkpoint from files, and refuses a missing shard and a pickle checkpoint', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  const dir = testInfo.outputPath('sharded');
  await mkdir(dir, { recursive: true });
  const files = await shardedModelFiles();
  for (const [name, bytes] of Object.entries(files)) await writeFile(path.join(dir, name), bytes);
  await writeFile(path.join(dir, 'pytorch_model.bin'), 'pickle');
  const pathsOf = (names: string[]) => names.map((name) => path.join(dir, name));
  const shardNames = Object.keys(files).filter((name) => /^model-\d+-of-\d+\.safetensors$/.test(name));
  await page.goto('/#/model');
  const picker = page.getByLabel('Choose model files');

  await page.getByLabel('Name for this model').fill('no-second-shard');
  await picker.setInputFiles(pathsOf([...TEXT_FILE_NAMES, 'model.safetensors.index.json', shardNames[0]]));
  await expect(page.getByTestId('model-problem')).toContainText(
    `Missing ${shardNames[1]}: model.safetensors.index.json names 2 shards; give them all.`,
  );

  await page.getByLabel('Name for this model').fill('pickle');
  await picker.setInputFiles(pathsOf([...TEXT_FILE_NAMES, 'pytorch_model.bin']));
  await expect(page.getByTestId('model-problem')).toContainText(
    'This model has only pytorch_model.bin, a pickle file, which octoclip never loads',
  );

  await page.getByLabel('Name for this model').fill('sharded');
  await picker.setInputFiles(pathsOf(Object.keys(files)));
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText('local/sharded');
  await expect(loadedCard(page)).toContainText('3 layers, width 48, 32 px images in 8 px patches');
  await expect(page.getByRole('article', { name: 'Model cache' })).not.toContainText('local/pickle');
  // Kept for the next visit: the shards come back from the cache.
  await page.reload();
  await expect(loadedCard(page).getByTestId('loaded-model')).toHaveText('local/sharded');
  expect(errors).toEqual([]);
});

test('offers the OpenAI and LAION checkpoints with download size and planned training memory', async ({
  page,
}, testInfo) => {
  await page.goto('/#/model');
  const table = page.getByRole('table', { name: 'Suggested models' });
  for (const repo of [
    'openai/clip-vit-base-patch32',
    'openai/clip-vit-large-patch14',
    'openai/clip-vit-large-patch14-336',
    'laion/CLIP-ViT-B-32-laion2B-s34B-b79K',
    'laion/CLIP-ViT-L-14-laion2B-s32B-b82K',
  ]) {
    await expect(table).toContainText(repo);
  }
  await expect(table).not.toContainText('Planning'); // the placeholder row shown while the engine plans is gone
  const large = table.getByRole('row').filter({ hasText: 'openai/clip-vit-large-patch14-336' });
  await expect(large).toContainText('1.6 GiB');
  await expect(large.getByRole('cell').nth(1)).toHaveText(/^\d+(\.\d)? GiB$/);
  await large.getByRole('button', { name: 'Use openai/clip-vit-large-patch14-336' }).click();
  await expect(page.getByLabel('Repository')).toHaveValue('openai/clip-vit-large-patch14-336');
  await saveScreen(page, testInfo, 'model-suggested');
});
