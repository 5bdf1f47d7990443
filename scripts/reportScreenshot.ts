// docs/report.png: the report of `npm run demo`'s run, as Debian's chromium shows it (the browser test's
// helper). Run after `npm run demo`:   npm run screenshot [-- RUN_DIR [OUT.png]]
import path from 'node:path';
import { writeRunReport } from '../src/report/runReport.js';
import { launchBrowser, noBrowser, openFile, pixelStats, screenshot } from '../test/helpers/browser.js';

const runDir = process.argv[2] ?? 'runs/demo_SGR';
const out = process.argv[3] ?? path.join('docs', 'report.png');

const why = noBrowser();
if (why) throw new Error(why.replace(/^skipped: /, ''));
const html = await writeRunReport(runDir);
const b = await launchBrowser();
try {
  const p = await openFile(b, html, 1100);
  if (p.requests.length !== 1) throw new Error(`the page asked for more than its file: ${p.requests.join(', ')}`);
  const png = await screenshot(p.page, out);
  const px = await pixelStats(b, png);
  process.stdout.write(`${out}: ${png.length} bytes, ${(100 * px.inked).toFixed(1)} % inked, from ${html}\n`);
} finally {
  await b.close();
}
