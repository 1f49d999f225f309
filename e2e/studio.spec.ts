// The studio with WebGPU: the engine worker opens a device, describes it, and proves compute works
// by running a real kernel; the page recovers from a lost device. (Project "webgpu".)

import { expect, test, type Page } from '@playwright/test';
import { collectErrors, countMainThreadAdapterRequests, mainThreadAdapterRequests, saveScreen } from './helpers';

const EXPECTED_SUMS = ['11', '22', '33', '44', '55', '66', '77', '88']; // (i + 1) + 10 (i + 1)

function deviceCard(page: Page) {
  return page.getByRole('article', { name: 'WebGPU device' });
}

function selfTestCard(page: Page) {
  return page.getByRole('article', { name: 'Compute check' });
}

/** The value cells of the self-test table's row headed `name` ("a", "b" or "a + b (GPU)"). */
function valueCells(page: Page, name: string) {
  const header = page.getByRole('rowheader', { name, exact: true }); // matched inside each row
  return selfTestCard(page).getByRole('row').filter({ has: header }).getByRole('cell');
}

async function expectSelfTestPassed(page: Page): Promise<void> {
  await expect(selfTestCard(page).getByTestId('self-test-status')).toContainText(
    'Passed: the GPU’s sums match the CPU’s exactly',
  );
  await expect(valueCells(page, 'a + b (GPU)')).toHaveText(EXPECTED_SUMS);
}

test('shows the adapter the engine worker opened and a kernel result computed on it', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await countMainThreadAdapterRequests(page);
  await page.goto('/');

  await expect(page.getByRole('banner')).toContainText('octoclip');
  await expect(page.getByRole('heading', { level: 1, name: 'GPU' })).toBeVisible();

  const device = deviceCard(page);
  await expect(device.getByText('Ready', { exact: true })).toBeVisible();
  const adapterName = (await page.getByTestId('adapter-name').textContent()) ?? '';
  expect(adapterName).toMatch(/\S/);
  expect(adapterName).not.toBe('unknown adapter');
  await expect(device.getByRole('status')).toHaveText('WebGPU is available.');
  // The next step, and a warning where the adapter is a software one (SwiftShader in these tests).
  await expect(page.getByTestId('next-step')).toHaveText('Next: load a CLIP model. Open the Model screen');
  if (/swiftshader|llvmpipe|lavapipe/i.test(adapterName))
    await expect(page.getByTestId('software-adapter')).toContainText(`software GPU adapter (${adapterName})`);

  const limits = device.getByRole('definition');
  await expect(limits).toHaveCount(4);
  for (const value of (await limits.allTextContents()).slice(0, 3))
    expect(value).toMatch(/^\d+(\.\d)? (bytes|KiB|MiB|GiB|TiB)$/);
  await expect(limits.nth(3)).toHaveText(/^\d+$/);

  await expectSelfTestPassed(page);
  await expect(valueCells(page, 'a')).toHaveText(['1', '2', '3', '4', '5', '6', '7', '8']);
  await expect(valueCells(page, 'b')).toHaveText(['10', '20', '30', '40', '50', '60', '70', '80']);

  // The device lives in the worker: the page itself never asked for an adapter.
  expect(page.workers().map((w) => w.url())).toContainEqual(expect.stringMatching(/engine\.worker/));
  expect(await mainThreadAdapterRequests(page)).toBe(0);

  await saveScreen(page, testInfo, 'gpu-ready');
  await page.getByTestId('next-step').getByRole('link', { name: 'Open the Model screen' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Model' })).toBeVisible();
  expect(errors).toEqual([]);
});

test('is usable from the keyboard, with a link to every section', async ({ page }) => {
  await page.goto('/');
  await expectSelfTestPassed(page);

  const nav = page.getByRole('navigation', { name: 'Studio sections' });
  await expect(nav.getByRole('link', { name: 'GPU' })).toHaveAttribute('aria-current', 'page');
  const sections = ['Model', 'Dataset', 'Train', 'Evaluate', 'Try it', 'Adapter library', 'Workspace'];
  for (const title of sections)
    await expect(nav.getByRole('link', { name: title, exact: true })).not.toHaveAttribute('aria-current', 'page');

  // Tab from the top of the page to the self-test button and run it with Enter.
  const runAgain = selfTestCard(page).getByRole('button', { name: 'Run again' });
  let reached = false;
  for (let i = 0; i < 16 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await runAgain.evaluate((button) => button === document.activeElement);
  }
  expect(reached, 'the Run again button is reachable with Tab').toBe(true);
  await page.keyboard.press('Enter');
  await expect(
    selfTestCard(page)
      .getByText('Running', { exact: true })
      .or(selfTestCard(page).getByText('Passed', { exact: true })),
  ).toBeVisible();
  await expectSelfTestPassed(page);

  // Every section is a link that Enter follows; each screen names itself in its heading.
  for (const title of sections) {
    await nav.getByRole('link', { name: title, exact: true }).focus();
    await page.keyboard.press('Enter');
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(title);
    await expect(nav.getByRole('link', { name: title, exact: true })).toHaveAttribute('aria-current', 'page');
  }
});

// Last in this file: it crashes the browser's GPU process, which every page of the browser shares.
test('explains a lost device and reconnects to a new one', async ({ page, browser }, testInfo) => {
  await page.goto('/');
  await expectSelfTestPassed(page);

  const cdp = await browser.newBrowserCDPSession();
  await cdp.send('Browser.crashGpuProcess');

  const device = deviceCard(page);
  await expect(device.getByText('Device lost', { exact: true })).toBeVisible();
  await expect(device.getByRole('status')).toHaveText('The GPU device was lost.');
  await expect(device.getByText('Reconnect to open a new device')).toBeVisible();
  await expect(selfTestCard(page).getByRole('button', { name: 'Run' })).toBeDisabled();
  await saveScreen(page, testInfo, 'gpu-device-lost');

  await device.getByRole('button', { name: 'Reconnect' }).click();
  await expect(device.getByText('Ready', { exact: true })).toBeVisible();
  await expectSelfTestPassed(page);
});
