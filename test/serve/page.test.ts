// The `vsl serve` page in a real browser (Debian's chromium through puppeteer-core; skipped, saying why, where it
// is not installed): a query typed in the box gives the API's grid (pictures where mapped, the captions
// elsewhere), a split caption says where its own image ranks, a click shows that image's captions ranked with the
// ground truth marked, a caption there is one click from being the query, Escape closes, and the page asks for
// nothing but its own server, with no console error (its content security policy refuses nothing it uses).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readCaptions } from '../../src/data/captions.js';
import { launchBrowser, noBrowser, type OfflineBrowser } from '../helpers/browser.js';
import { DATA_NAME, makeCheckpoint, makeEvalData, vslSync, type EvalFixture } from '../helpers/evalFixture.js';
import { request } from '../helpers/httpClient.js';
import { png } from '../helpers/png.js';
import { openCard, openServePage, searchFor } from '../helpers/servePage.js';
import { startServe, type ServeChild } from '../helpers/serveFixture.js';

const N = 12;
const skip = noBrowser();
let f: EvalFixture;
let server: ServeChild | undefined;
let browser: OfflineBrowser | undefined;
let captions: string[] = [];

before(async () => {
  if (skip) return;
  f = makeEvalData('serve-page', N);
  const model = await makeCheckpoint(f, 'm', { module: 'SGR', seed: 5 });
  const idx = path.join(f.dir, 'idx');
  assert.equal(vslSync(f.dir, ['index', '--model', model, '--split', 'test', '--out', idx]).status, 0);
  captions = readCaptions(path.join(f.dataPath, DATA_NAME, 'test_caps.txt'));
  // pictures for the even rows only: the odd ones show their captions
  const pics = path.join(f.dir, 'pics');
  fs.mkdirSync(pics);
  const names = Array.from({ length: N }, (_, i) => (i % 2 === 0 ? `p${i}.png` : `absent${i}.png`));
  for (let i = 0; i < N; i += 2)
    fs.writeFileSync(
      path.join(pics, names[i]),
      png(8, 6, () => [20 * i, 120, 200]),
    );
  fs.writeFileSync(path.join(f.dir, 'names.txt'), names.join('\n'));
  server = await startServe(
    f.dir,
    ['--index', idx, '--images', pics, '--image-names', path.join(f.dir, 'names.txt')],
    'warn',
  );
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  if (server) {
    server.child.kill('SIGTERM');
    await server.done;
  }
  if (f) fs.rmSync(f.dir, { recursive: true, force: true });
});

test("type a query, see the grid, click through to an image's captions", { skip }, async () => {
  const s = server!;
  const { page, requests, errors } = await openServePage(browser!, s.url);
  const query = captions[33]; // image 6's
  await searchFor(page, query);
  const api = (await request(s.url, `/api/search?text=${encodeURIComponent(query)}&k=10`)).json as {
    results: { image: number; score: number }[];
    groundTruth: { image: number; rank: number };
  };
  const cards = await page.$$eval('#grid a.card', (as) =>
    as.map((a) => ({
      image: Number(a.getAttribute('data-image')),
      score: a.querySelector('.score')?.textContent,
      img: a.querySelector('img') !== null,
      captions: a.querySelectorAll('li').length,
      gt: a.classList.contains('gt'),
    })),
  );
  assert.deepEqual(
    cards.map((c) => [c.image, c.score]),
    api.results.map((h) => [h.image, h.score.toFixed(4)]),
  );
  for (const c of cards) {
    assert.equal(c.img, c.image % 2 === 0, `image ${c.image}: a picture only where mapped`);
    assert.equal(c.captions, c.img ? 0 : 5);
    assert.equal(c.gt, c.image === 6);
  }
  assert.equal(api.groundTruth.image, 6);
  assert.equal(await page.$eval('#gt-rank', (b) => b.textContent), String(api.groundTruth.rank));
  // the pictures loaded (decoded by the browser)
  const loaded = await page.$$eval('#grid img', (imgs) => imgs.map((i) => i.naturalWidth));
  assert.ok(loaded.length > 0 && loaded.every((w) => w === 8), String(loaded));

  const image = await openCard(page, 0);
  const rows = await page.$$eval('#captions tr.gt', (trs) => trs.length);
  const api2 = (await request(s.url, `/api/image/${image}?k=10`)).json as {
    results: { groundTruth: boolean }[];
    firstGroundTruthRank: number;
  };
  assert.equal(rows, api2.results.filter((h) => h.groundTruth).length);
  assert.equal(await page.$eval('#first-gt', (b) => b.textContent), String(api2.firstGroundTruthRank));
  assert.equal(await page.$$eval('#captions tr', (trs) => trs.length), 11); // the header and the top 10
  assert.match(page.url(), new RegExp(`#q=.*&image=${image}$`));

  // one of its captions becomes the query: where does its own image rank?
  const own = await page.$$('#detail-box ol li a');
  const text = await own[2].evaluate((a) => a.textContent ?? '');
  await own[2].click();
  await page.waitForFunction(
    (t: string) => (document.getElementById('text') as HTMLInputElement).value === t,
    {},
    text,
  );
  await page.waitForSelector('#gt-rank');
  assert.equal(await page.$eval('#overlay', (o) => (o as HTMLElement).hidden), true);

  // back to the image, Escape closes it
  await page.goBack();
  await page.waitForFunction(() => !(document.getElementById('overlay') as HTMLElement).hidden);
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => (document.getElementById('overlay') as HTMLElement).hidden);

  assert.deepEqual(
    requests.filter((u) => !u.startsWith(s.url)),
    [],
  );
  assert.deepEqual(errors, []);
  await page.close();
});

test('words outside the vocabulary are named; an API error is shown, not swallowed', { skip }, async () => {
  const s = server!;
  const { page, errors } = await openServePage(browser!, `${s.url}#q=zorblax%20quux`);
  await page.waitForSelector('.tok.unk');
  assert.deepEqual(await page.$$eval('.tok.unk', (t) => t.map((e) => e.textContent)), ['zorblax', 'quux']);
  await page.goto(`${s.url}#q=a&image=999`, { waitUntil: 'load' });
  await page.waitForSelector('#detail-box .banner.err');
  assert.match(await page.$eval('#detail-box .banner.err', (e) => e.textContent ?? ''), /image: no row 999/);
  // the failed request is the console's only complaint
  assert.ok(
    errors.every((e) => /404/.test(e)),
    errors.join('\n'),
  );
  await page.close();
});
