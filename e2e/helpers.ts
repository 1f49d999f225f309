// Shared by the end-to-end tests: screenshots per screen, and a watch on uncaught page errors.

import path from 'node:path';
import type { Page, TestInfo } from '@playwright/test';

/** Saves a full-page screenshot as e2e/screenshots/<project>-<name>.png and attaches it to the report. */
export async function saveScreen(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  const file = path.join(testInfo.project.testDir, 'screenshots', `${testInfo.project.name}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  await testInfo.attach(name, { path: file, contentType: 'image/png' });
}

/** Collects uncaught errors from the page and its workers; the test asserts the list stays empty. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page: ${error.message}`));
  page.on('worker', (worker) =>
    worker.on('console', (message) => {
      if (message.type() === 'error') errors.push(`worker: ${message.text()}`);
    }),
  );
  return errors;
}

/**
 * Counts adapter requests made on the page's main thread. The studio must make none: the engine
 * worker alone touches WebGPU.
 */
export async function countMainThreadAdapterRequests(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const counter = window as unknown as { mainThreadAdapterRequests: number };
    counter.mainThreadAdapterRequests = 0;
    const gpu = navigator.gpu as GPU | undefined;
    if (!gpu) return;
    const requestAdapter = gpu.requestAdapter.bind(gpu);
    gpu.requestAdapter = (options) => {
      counter.mainThreadAdapterRequests++;
      return requestAdapter(options);
    };
  });
}

export function mainThreadAdapterRequests(page: Page): Promise<number> {
  return page.evaluate(() => (window as unknown as { mainThreadAdapterRequests: number }).mainThreadAdapterRequests);
}
