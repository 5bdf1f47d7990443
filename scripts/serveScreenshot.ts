// docs/serve.png and docs/serve-image.png: the `vsl serve` page as Debian's chromium shows it, a split caption
// searched (the grid, its own image's rank) and then the first result's captions ranked. Build an index first:
//   npm run build && node dist/scripts/serveScreenshot.js IDX [QUERY] [-- more vsl serve options]
import path from 'node:path';
import { launchBrowser, noBrowser, pixelStats } from '../test/helpers/browser.js';
import { request } from '../test/helpers/httpClient.js';
import { openCard, openServePage, searchFor } from '../test/helpers/servePage.js';
import { startServe } from '../test/helpers/serveFixture.js';

const [index, queryArg, ...serveArgs] = process.argv.slice(2);
if (!index) throw new Error('usage: serveScreenshot.js IDX [QUERY] [vsl serve options...]');
const why = noBrowser();
if (why) throw new Error(why.replace(/^skipped: /, ''));

const server = await startServe(process.cwd(), ['--index', path.resolve(index), ...serveArgs], 'warn');
const b = await launchBrowser();
try {
  // by default the second caption of image 0: a query whose right answer is known
  const own = (await request(server.url, '/api/image/0?k=1')).json as { captions: { text: string }[] };
  const query = queryArg ?? own.captions[1].text;
  const { page, errors } = await openServePage(b, server.url, 1200);
  await searchFor(page, query);
  for (const [file, step] of [
    ['docs/serve.png', async () => {}],
    ['docs/serve-image.png', async () => void (await openCard(page, 0))],
  ] as const) {
    await step();
    const png = await page.screenshot({ type: 'png', path: file });
    const px = await pixelStats(b, png);
    process.stdout.write(`${file}: ${png.length} bytes, ${(100 * px.inked).toFixed(1)} % inked, query "${query}"\n`);
  }
  if (errors.length) throw new Error(`the page logged errors: ${errors.join('; ')}`);
} finally {
  await b.close();
  server.child.kill('SIGTERM');
  await server.done;
}
