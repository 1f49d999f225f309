// The example page (examples/classify) in Chromium: the library API loads the tiny model from a folder URL and
// a downloaded adapter, and classifies a picked image and a webcam frame (Chromium's fake camera).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { createServer, type ViteDevServer } from 'vite';
import { randomAdapterFile } from '../test/helpers/random-adapter';
import { MODEL_FILE_NAMES, TINY_MODEL_DIR, TRY_IMAGE } from './fixtures';

const PORT = Number(process.env.OCTOCLIP_E2E_PORT || 4317) + 1;
const CLASSES = ['circle', 'square', 'triangle'];
let server: ViteDevServer;

test.beforeAll(async () => {
  server = await createServer({
    configFile: 'examples/vite.config.ts',
    server: { port: PORT, strictPort: true },
    logLevel: 'warn',
  });
  await server.listen();
});

test.afterAll(async () => {
  await server?.close();
});

test('the example page classifies a picked image and a webcam frame with a downloaded adapter', async ({ page }) => {
  test.setTimeout(240_000);
  // The model folder URL the page is given, served from the tiny model's files.
  await page.route('**/models/tiny/*', (route) => {
    const name = path.basename(new URL(route.request().url()).pathname);
    return MODEL_FILE_NAMES.includes(name)
      ? route.fulfill({ body: readFileSync(path.join(TINY_MODEL_DIR, name)) })
      : route.fulfill({ status: 404 });
  });
  const files = Object.fromEntries(
    MODEL_FILE_NAMES.map((name) => [
      name,
      name.endsWith('.safetensors')
        ? new Uint8Array(readFileSync(path.join(TINY_MODEL_DIR, name)))
        : readFileSync(path.join(TINY_MODEL_DIR, name), 'utf8'),
    ]),
  );
  const adapter = randomAdapterFile('models/tiny', files, CLASSES);

  await page.goto(`http://127.0.0.1:${PORT}/classify/`);
  await page.getByLabel(/^Model/).fill(`http://127.0.0.1:${PORT}/models/tiny/`);
  await page.getByLabel(/^Adapter/).setInputFiles({
    name: 'shapes.octoclip.safetensors',
    mimeType: 'application/octet-stream',
    buffer: Buffer.from(adapter),
  });
  await page.getByLabel(/^Image/).setInputFiles(TRY_IMAGE);
  const result = page.getByRole('list', { name: 'Class probabilities' }).getByRole('listitem');
  await expect(result).toHaveCount(3, { timeout: 180_000 });
  const rows = (await result.allTextContents()).map((text) => /^(\w+): ([\d.]+)%$/.exec(text)!);
  expect(rows.map((row) => row[1]).sort()).toEqual(CLASSES);
  expect(rows.reduce((sum, row) => sum + Number(row[2]), 0)).toBeCloseTo(100, 0);
  await expect(page.getByRole('status')).toHaveText(`Most likely: ${rows[0][1]}`);

  await page.getByRole('button', { name: 'Classify a webcam frame' }).click();
  await expect(page.getByRole('status')).toHaveText(/^Most likely: (circle|square|triangle)$/);
});
