// Measurements the scale and layout tests print: how long a screen takes to show, the page's memory,
// and what sticks out of a narrow window.

import { expect, type Page } from '@playwright/test';

/** Opens a section from the navigation; milliseconds from the click until its heading is shown. */
export async function timeToScreen(page: Page, title: string): Promise<number> {
  const started = Date.now();
  await page
    .getByRole('navigation', { name: 'Studio sections' })
    .getByRole('link', { name: title, exact: true })
    .click();
  await expect(page.getByRole('heading', { level: 1, name: title, exact: true })).toBeVisible();
  // The next frame: the screen has been painted.
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  return Date.now() - started;
}

/** The page's JavaScript heap in use and its DOM size (Chromium's performance metrics). */
export async function pageMemory(page: Page): Promise<{ heapMiB: number; nodes: number }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const { metrics } = await cdp.send('Performance.getMetrics');
  await cdp.detach();
  const metric = (name: string) => metrics.find((m) => m.name === name)?.value ?? 0;
  return { heapMiB: Math.round((10 * metric('JSHeapUsedSize')) / 2 ** 20) / 10, nodes: metric('Nodes') };
}

/**
 * Whether the page scrolls sideways, and the elements that reach past the window's right edge
 * without a scrolling ancestor to hold them (tag, class and width, for the failure message).
 */
export function horizontalOverflow(page: Page): Promise<{ scrollWidth: number; width: number; outside: string[] }> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const clipped = (element: Element): boolean => {
      for (let parent = element.parentElement; parent; parent = parent.parentElement) {
        if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(parent).overflowX)) return true;
      }
      return false;
    };
    const outside = [...document.querySelectorAll('body *')]
      .filter((element) => element.getBoundingClientRect().right > width + 1 && !clipped(element))
      .slice(0, 10)
      .map(
        (element) =>
          `${element.tagName.toLowerCase()}.${[...element.classList].join('.')} (right ${Math.round(element.getBoundingClientRect().right)})`,
      );
    return { scrollWidth: document.documentElement.scrollWidth, width, outside };
  });
}
