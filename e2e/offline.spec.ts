// The built site as a static host serves it: under a sub-path, from a server that knows nothing of
// the studio. After the first visit the studio opens and trains with no connection at all: its files
// come from the service worker's cache, the model and the images from IndexedDB.

import { expect, test } from '@playwright/test';
import { BUILD_DIR } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { serveStatic } from './static-server';
import { addDatasetFolder, loadTinyModel } from './steps';

const SUB_PATH = '/projects/octoclip/studio/';

test('the built site works under a sub-path, and opens and trains offline after a reload', async ({
  browser,
}, testInfo) => {
  test.skip(process.env.OCTOCLIP_E2E_SERVER === 'dev', 'the service worker is part of the production build only');
  test.setTimeout(180_000);
  const server = await serveStatic(BUILD_DIR, SUB_PATH);
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    const errors = collectErrors(page);
    await loadTinyModel(page);
    await addDatasetFolder(page);
    expect(page.url()).toBe(`${server.url}#/dataset`);
    const manifest = await page.evaluate(async () => {
      const link = document.querySelector<HTMLLinkElement>('link[rel="manifest"]')!;
      return { href: link.href, body: await (await fetch(link.href)).json() };
    });
    expect(manifest.href).toBe(`${server.url}manifest.webmanifest`);
    expect(manifest.body).toMatchObject({ start_url: './', scope: './', display: 'standalone' });
    // The first visit's page is taken over by the service worker once it has stored the site.
    await expect
      .poll(() => page.evaluate(() => navigator.serviceWorker.controller?.scriptURL))
      .toBe(`${server.url}sw.js`);

    // No connection: the browser is offline, and the server is gone too.
    await context.setOffline(true);
    await server.close();
    await page.reload();
    await expect(page.getByRole('heading', { level: 1, name: 'Dataset' })).toBeVisible();
    await page.goto('./#/model');
    await expect(page.getByTestId('loaded-model')).toHaveText('local/tiny');

    await page.goto('./#/train');
    await page.getByLabel('Iterations').fill('4');
    await page.getByLabel('Batch size').fill('4');
    await page.getByRole('button', { name: 'Start training' }).click();
    const run = page.getByRole('article', { name: 'Training run' });
    await expect(run).toBeVisible();
    await expect(run.getByText('Finished', { exact: true })).toBeVisible({ timeout: 120_000 });
    await saveScreen(page, testInfo, 'offline-trained');
    expect(errors).toEqual([]);
  } finally {
    await context.close();
    await server.close().catch(() => undefined);
  }
});
