// The studio in a Chromium without WebGPU (launched with --disable-webgpu: navigator.gpu is there but
// offers no adapter). The page must say so and say what to do. (Project "no-webgpu".)

import { expect, test } from '@playwright/test';
import { collectErrors, saveScreen } from './helpers';

test('explains that WebGPU is unavailable and what to do', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await page.goto('/');

  await expect(page.getByRole('banner')).toContainText('octoclip');
  const device = page.getByRole('article', { name: 'WebGPU device' });
  await expect(device.getByText('Not available', { exact: true })).toBeVisible();
  await expect(device.getByRole('status')).toHaveText('WebGPU is not available.');
  await expect(device.getByRole('heading', { name: 'What to do' })).toBeVisible();
  // The advice comes from acquireDevice (src/gpu/device.ts), through the worker's error response.
  await expect(device).toContainText('no GPU adapter was offered');
  await expect(device).toContainText('chrome://flags/#enable-unsafe-webgpu');
  await expect(page.getByTestId('adapter-name')).toHaveCount(0);

  const selfTest = page.getByRole('article', { name: 'Compute check' });
  await expect(selfTest.getByTestId('self-test-status')).toHaveText('Runs once the GPU is ready.');
  await expect(selfTest.getByRole('button', { name: 'Run' })).toBeDisabled();

  // Trying again asks the worker again, and gets the same honest answer.
  await device.getByRole('button', { name: 'Try again' }).click();
  await expect(device.getByText('Not available', { exact: true })).toBeVisible();

  await saveScreen(page, testInfo, 'gpu-webgpu-unavailable');
  expect(errors).toEqual([]);
});
