// A real browser for the report tests and the screenshot script: Debian's chromium (apt-get install chromium;
// .ci/run installs it) driven by puppeteer-core, offline (a fresh profile, no background networking). A page is
// opened from its file with JavaScript off (a report must need no script), and every request the page makes is
// recorded, so a test can say that nothing but the file itself was fetched.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why a browser test cannot run here, or false. */
export function noBrowser(): string | false {
  return fs.existsSync(CHROMIUM)
    ? false
    : `skipped: no ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it, so CI runs this test)`;
}

export interface OfflineBrowser {
  browser: Browser;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<OfflineBrowser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface OpenedPage {
  page: Page;
  url: string;
  /** Every URL the page asked for, in order. */
  requests: string[];
}

/** Open an HTML file with JavaScript disabled, recording each request; waits until the page has loaded. */
export async function openFile(b: OfflineBrowser, file: string, width = 1100): Promise<OpenedPage> {
  const page = await b.browser.newPage();
  await page.setJavaScriptEnabled(false);
  await page.setViewport({ width, height: 900, deviceScaleFactor: 1 });
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  const url = pathToFileURL(path.resolve(file)).href;
  await page.goto(url, { waitUntil: 'load' });
  return { page, url, requests };
}

/** A full-page PNG screenshot. */
export async function screenshot(p: Page, file?: string): Promise<Uint8Array> {
  return await p.screenshot({ fullPage: true, type: 'png', ...(file ? { path: file } : {}) });
}

/**
 * How much of a PNG is drawn: decoded by the browser itself (a canvas in a blank page with script on), the share
 * of pixels that are not the background and the number of distinct colours.
 */
export async function pixelStats(b: OfflineBrowser, png: Uint8Array): Promise<{ inked: number; colours: number }> {
  const page = await b.browser.newPage();
  try {
    const dataUrl = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
    return await page.evaluate(async (src: string) => {
      const img = new Image();
      img.src = src;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      const bg = [d[0], d[1], d[2]];
      let inked = 0;
      const colours = new Set<number>();
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] !== bg[0] || d[i + 1] !== bg[1] || d[i + 2] !== bg[2]) inked++;
        if (colours.size < 5000) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      }
      return { inked: inked / (d.length / 4), colours: colours.size };
    }, dataUrl);
  } finally {
    await page.close();
  }
}
