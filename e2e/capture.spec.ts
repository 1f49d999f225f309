// Collecting a class from the camera (Chromium's synthetic one: a moving test pattern) and from the
// clipboard, on the Dataset screen: the frames are stored like dropped files and survive a reload.

import { expect, test } from '@playwright/test';
import { readFile } from 'node:fs/promises';
import { DATASET_CLASSES, IMAGES_PER_CLASS, TRY_IMAGE } from './fixtures';
import { collectErrors, saveScreen } from './helpers';
import { addDatasetFolder, classCard } from './steps';

test('adds photos, a held burst and a pasted image to a class', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await addDatasetFolder(page);
  const name = DATASET_CLASSES[1];
  const card = classCard(page, name);
  const thumbnails = card.getByRole('img');

  await card.getByRole('button', { name: `Use the camera for ${name}` }).click();
  const preview = card.getByLabel(`Camera preview for ${name}`);
  await expect.poll(() => preview.evaluate((video) => (video as HTMLVideoElement).videoWidth)).toBeGreaterThan(0);
  // The cameras present to choose from: here Chromium's fake one.
  await expect(card.getByLabel(`Camera for ${name}`).getByRole('option')).toHaveText([/fake/i]);
  await card.getByRole('button', { name: 'Take photo' }).click();
  await expect(thumbnails).toHaveCount(IMAGES_PER_CLASS + 1);

  // Held with the mouse: a burst of frames (5 a second) for as long as the button is held, even when
  // the pointer strays off it meanwhile, added together when the button is let go.
  const hold = card.getByRole('button', { name: 'Hold to record' });
  await hold.hover();
  const box = (await hold.boundingBox())!;
  await page.mouse.down();
  await expect(card.getByRole('button', { name: /^Recording… [3-9]/ })).toBeVisible();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height * 4, { steps: 4 });
  await expect(card.getByRole('button', { name: /^Recording… ([6-9]|\d\d)/ })).toBeVisible();
  await page.mouse.up();
  await expect(hold).toBeVisible();
  await expect.poll(() => thumbnails.count()).toBeGreaterThanOrEqual(IMAGES_PER_CLASS + 1 + 6);
  // Held with the keyboard: Space down records until Space is let go.
  const afterMouse = await thumbnails.count();
  await hold.focus();
  await page.keyboard.down(' ');
  await expect(card.getByRole('button', { name: /^Recording… [3-9]/ })).toBeVisible();
  await page.keyboard.up(' ');
  await expect(hold).toBeVisible();
  await expect.poll(() => thumbnails.count()).toBeGreaterThanOrEqual(afterMouse + 3);
  // Held with a finger: a touch records until it is lifted.
  const afterKeyboard = await thumbnails.count();
  const touch = await page.context().newCDPSession(page);
  await touch.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 1 });
  // Touch points are in the window's coordinates: the button, below the grown grid of thumbnails, in view.
  await hold.scrollIntoViewIfNeeded();
  const now = (await hold.boundingBox())!;
  const finger = { x: now.x + now.width / 2, y: now.y + now.height / 2 };
  await touch.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [finger] });
  await expect(card.getByRole('button', { name: /^Recording… [3-9]/ })).toBeVisible();
  await touch.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await expect(hold).toBeVisible();
  await expect.poll(() => thumbnails.count()).toBeGreaterThanOrEqual(afterKeyboard + 3);
  await touch.send('Emulation.setTouchEmulationEnabled', { enabled: false });
  const afterBurst = await thumbnails.count();
  await expect(card.getByTestId('captured-count')).toHaveText(
    `${afterBurst - IMAGES_PER_CLASS} images added from the camera or the clipboard`,
  );
  await saveScreen(page, testInfo, 'dataset-camera');
  await card.getByRole('button', { name: 'Close camera' }).click();
  await expect(preview).toHaveCount(0);

  // A pasted image (Ctrl+V), into the class whose Paste button has the focus.
  const png = (await readFile(TRY_IMAGE)).toString('base64');
  const target = card.getByRole('button', { name: `Paste an image into ${name}` });
  await target.focus();
  await target.evaluate((element, base64) => {
    const transfer = new DataTransfer();
    transfer.items.add(
      new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], 'pasted.png', { type: 'image/png' }),
    );
    element.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }));
  }, png);
  await expect(thumbnails).toHaveCount(afterBurst + 1);
  await expect(card.getByRole('img', { name: 'pasted.png' })).toBeVisible();

  // The Paste button reads the clipboard itself, where the browser allows it.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.evaluate(async (base64) => {
    const blob = new Blob([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], { type: 'image/png' });
    await navigator.clipboard.write([new ClipboardItem({ 'image/png': blob })]);
  }, png);
  await target.click();
  await expect(thumbnails).toHaveCount(afterBurst + 2);

  // Stored, not only shown; the other classes are untouched.
  await page.reload();
  await expect(thumbnails).toHaveCount(afterBurst + 2);
  await expect(classCard(page, DATASET_CLASSES[0]).getByRole('img')).toHaveCount(IMAGES_PER_CLASS);
  expect(errors).toEqual([]);
});
