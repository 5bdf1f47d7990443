// Driving the `vsl serve` page in Debian's chromium (script on: the page is a small app), for the page test and
// the screenshot script: every request and console error recorded, a query typed as a person types it, a click
// through to an image's captions.
import type { Page } from 'puppeteer-core';
import type { OfflineBrowser } from './browser.js';

export interface ServePage {
  page: Page;
  requests: string[];
  /** console errors and uncaught exceptions (a content security policy refusal shows here) */
  errors: string[];
}

export async function openServePage(b: OfflineBrowser, url: string, width = 1200): Promise<ServePage> {
  const page = await b.browser.newPage();
  await page.setViewport({ width, height: 900, deviceScaleFactor: 1 });
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.getElementById('sub')?.textContent !== 'loading...');
  return { page, requests, errors };
}

/** Type `text` into the search box, press Enter, wait for the grid. */
export async function searchFor(p: Page, text: string): Promise<void> {
  await p.click('#text', { clickCount: 3 });
  await p.type('#text', text);
  await p.keyboard.press('Enter');
  await p.waitForFunction(
    (t: string) =>
      document.querySelector('#grid a.card') !== null &&
      (document.getElementById('text') as HTMLInputElement).value === t,
    {},
    text,
  );
}

/** Click the n-th card (0-based) and wait for its captions table. */
export async function openCard(p: Page, n: number): Promise<number> {
  const cards = await p.$$('#grid a.card');
  const image = Number(await cards[n].evaluate((a) => a.getAttribute('data-image')));
  await cards[n].click();
  await p.waitForFunction(
    (i: number) =>
      document.querySelector('#detail-box h2')?.textContent === `image ${i}` &&
      document.getElementById('captions') !== null,
    {},
    image,
  );
  return image;
}
