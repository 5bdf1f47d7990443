// What a user sees of a trained run, end to end through the binary: a short `vsl train` on tiny synthetic data
// (the demo's recipe shape: summed hinge, the hinge alone for the first epoch, then hinge + VSL; a mid-epoch
// validation) leaves RUN_DIR/report.html; `vsl report` and `vsl eval --report` pages opened in a real browser
// (Debian's chromium through puppeteer-core; skipped, saying why, where it is not installed) load with no
// request but their own file and no script, draw every chart as an SVG whose marks match the logs, and
// screenshot as more than a blank page; `vsl query` on the trained checkpoint ranks the test captions' own
// images first as often as the evaluation says, with the evaluation's scores.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readNpy } from '../../src/io/npyRead.js';
import { readCaptions } from '../../src/data/captions.js';
import { i2tRanks, t2iRanks } from '../../src/eval/metrics.js';
import { runQuery } from '../../src/cli/query.js';
import type { EvalJson } from '../../src/cli/eval.js';
import type { ImageResult } from '../../src/query/retrieval.js';
import { setLogLevel } from '../../src/util/log.js';
import { rejectsWith } from '../helpers/asserts.js';
import { launchBrowser, noBrowser, openFile, pixelStats, screenshot, type OfflineBrowser } from '../helpers/browser.js';
import {
  DATA_NAME,
  errorLine,
  makeData,
  readMetrics,
  readSteps,
  rmrf,
  runVsl,
  tempDir,
} from '../train/trainHelpers.js';

const TRAIN_IMAGES = 96; // 480 captions: 15 steps of 32 per epoch
const TEST_IMAGES = 20;
let tmp = '';
let dataPath = '';
let run = '';
let sims: Float32Array; // test split scores of model_best.h5 (vsl eval --save-sims), (20, 100)
let evalJson: EvalJson;
let browser: OfflineBrowser | undefined;
const skipBrowser = noBrowser();

before(async () => {
  setLogLevel('warn');
  tmp = tempDir('trained');
  dataPath = makeData(tmp, TRAIN_IMAGES, TEST_IMAGES);
  run = path.join(tmp, 'run');
  // SAF at small dims leaves chance within 2-3 epochs here (test t2i R@1 ~50 % against 5 % by chance)
  const t = await runVsl(
    [
      'train',
      ...['--data-path', dataPath, '--data-name', DATA_NAME, '--model-name', run, '--module', 'SAF'],
      ...['--img-dim', '32', '--word-dim', '32', '--embed-size', '64', '--sim-dim', '32', '--dropout', '0'],
      ...['--batch-size', '32', '--num-epochs', '3', '--learning-rate', '0.01', '--lr-update', '2'],
      ...['--no-max-violation', '--semantic-warmup-epochs', '1', '--log-step', '1', '--val-step', '25'],
      ...['--seed', '1', '--backend', 'wasm'],
    ],
    300_000,
  );
  assert.equal(t.code, 0, t.stderr);
  const e = await runVsl([
    'eval',
    ...['--model', path.join(run, 'model_best.h5'), '--split', 'test', '--workers', '1', '--json'],
    ...['--save-sims', path.join(tmp, 'sims.npy'), '--report', path.join(tmp, 'eval.html')],
  ]);
  assert.equal(e.code, 0, e.stderr);
  evalJson = JSON.parse(e.stdout) as EvalJson;
  sims = readNpy(path.join(tmp, 'sims.npy')).data;
  if (!skipBrowser) browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  rmrf(tmp);
});

const figureRows = (html: string) =>
  Object.fromEntries([...html.matchAll(/data-chart="(\w+)" data-rows="(\d+)"/g)].map((m) => [m[1], Number(m[2])]));

test('vsl train keeps RUN_DIR/report.html current; vsl report writes the same charts', async () => {
  const trained = fs.readFileSync(path.join(run, 'report.html'), 'utf8');
  const r = await runVsl(['report', run, '-o', path.join(tmp, 'run.html')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `report written to ${path.join(tmp, 'run.html')}\n`);
  const html = fs.readFileSync(path.join(tmp, 'run.html'), 'utf8');
  const steps = readSteps(path.join(run, 'train.log'));
  const validations = readMetrics(path.join(run, 'metrics.jsonl'));
  assert.equal(steps.length, 45);
  assert.equal(validations.length, 4); // iteration 25 (val-step) and the end of each of the 3 epochs
  // refreshed at the last validation: every chart of the final page, with the same rows
  assert.deepEqual(figureRows(trained), figureRows(html));
  assert.deepEqual(figureRows(html), {
    hinge: 45,
    semantic: steps.filter((s) => s.semanticLoss !== 'none').length,
    total: 45,
    lr: 45,
    gradNorm: 45,
    recall: validations.length,
    rsum: validations.length,
  });
});

/** What the browser shows of each chart: its SVG's size, and per mark kind the vertex count of every line. */
interface ChartView {
  name: string;
  rows: number;
  width: number;
  height: number;
  lines: number[]; // vertices of each line mark's path
  points: number;
  rules: number;
  bars: string[]; // aria-label of each bar
}

async function chartsOf(page: import('puppeteer-core').Page): Promise<ChartView[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('figure.chart')].map((f) => {
      const svg = f.querySelector('svg');
      const marks = (kind: string) => [...f.querySelectorAll(`path[aria-roledescription="${kind}"]`)];
      const box = svg?.getBoundingClientRect();
      return {
        name: (f as HTMLElement).dataset.chart!,
        rows: Number((f as HTMLElement).dataset.rows),
        width: box?.width ?? 0,
        height: box?.height ?? 0,
        lines: marks('line mark').map((p) => (p.getAttribute('d') ?? '').match(/[ML]/g)?.length ?? 0),
        points: marks('point').length,
        rules: marks('rule mark').length + f.querySelectorAll('line[aria-roledescription="rule mark"]').length,
        bars: marks('bar').map((p) => p.getAttribute('aria-label') ?? ''),
      };
    }),
  );
}

async function expectOfflineAndDrawn(
  file: string,
): Promise<{ page: import('puppeteer-core').Page; charts: ChartView[] }> {
  const opened = await openFile(browser!, file);
  assert.deepEqual(opened.requests, [opened.url], 'the page asked for more than its own file');
  const scripts = await opened.page.evaluate(() => document.querySelectorAll('script').length);
  assert.equal(scripts, 0);
  const charts = await chartsOf(opened.page);
  assert.ok(charts.length > 0, 'no chart on the page');
  for (const c of charts) assert.ok(c.width > 300 && c.height > 100, `${c.name}: SVG of ${c.width} x ${c.height}`);
  const png = await screenshot(opened.page);
  const px = await pixelStats(browser!, png);
  assert.ok(px.inked > 0.03 && px.colours > 50, `screenshot looks blank: ${JSON.stringify(px)}`);
  return { page: opened.page, charts };
}

test(
  'the run report in a real browser: offline, no script, every chart drawn from the logs',
  { skip: skipBrowser },
  async () => {
    const steps = readSteps(path.join(run, 'train.log'));
    const validations = readMetrics(path.join(run, 'metrics.jsonl'));
    const withVsl = steps.filter((s) => s.semanticLoss !== 'none').length;
    assert.ok(withVsl > 0 && withVsl < steps.length);
    const { page, charts } = await expectOfflineAndDrawn(path.join(run, 'report.html'));
    const by = Object.fromEntries(charts.map((c) => [c.name, c]));
    assert.deepEqual(Object.keys(by), ['hinge', 'semantic', 'total', 'lr', 'gradNorm', 'recall', 'rsum']);
    // per-step curves: the values and their running mean, one vertex per logged step
    assert.deepEqual(by.hinge.lines, [steps.length, steps.length]);
    assert.deepEqual(by.semantic.lines, [withVsl, withVsl]);
    assert.deepEqual(by.total.lines, [steps.length, steps.length]);
    assert.deepEqual(by.lr.lines, [2 * steps.length - 1]); // a step line: two vertices a step after the first
    assert.deepEqual(by.gradNorm.lines, [steps.length]);
    assert.equal(by.gradNorm.rules, 1); // the clip level
    // per validation: six recall lines with a point each, the rsum line with its points and the best ring
    assert.deepEqual(by.recall.lines, Array(6).fill(validations.length));
    assert.equal(by.recall.points, 6 * validations.length);
    assert.deepEqual(by.rsum.lines, [validations.length]);
    assert.equal(by.rsum.points, validations.length + 1);
    const text = await page.evaluate(() => document.body.innerText);
    const best = validations.filter((v) => v.where === 'end of epoch').reduce((a, b) => (b.rsum > a.rsum ? b : a));
    assert.match(text, new RegExp(`best epoch\\s+epoch ${best.epoch}: dev rsum ${best.rsum.toFixed(1)}`));
    assert.match(text, /backend\s+wasm, training step on 2 thread\(s\)/);
    assert.match(text, /time per epoch\s+mean [\d.]+ s per epoch \(epoch 0: /);
  },
);

test(
  "the eval report in a real browser: offline, the rank histograms count the evaluation's ranks",
  { skip: skipBrowser },
  async () => {
    const { page, charts } = await expectOfflineAndDrawn(path.join(tmp, 'eval.html'));
    assert.deepEqual(
      charts.map((c) => c.name),
      ['ranks-i2t', 'ranks-t2i'],
    );
    const nImg = TEST_IMAGES;
    const nCap = 5 * TEST_IMAGES;
    const ranks = { 'ranks-i2t': i2tRanks(sims, nImg, nCap), 'ranks-t2i': t2iRanks(sims, nImg, nCap) };
    for (const c of charts) {
      const r = ranks[c.name as keyof typeof ranks];
      assert.equal(c.bars.length, c.rows);
      let total = 0;
      for (const label of c.bars) {
        // "rank of the right answer: 3-5; queries: 7" (1-based ranks)
        const m = /: (>)?(\d+)(?:-(\d+))?; queries: (\d+)$/.exec(label);
        assert.ok(m, label);
        const lo = m[1] ? Number(m[2]) + 1 : Number(m[2]);
        const hi = m[1] ? Infinity : Number(m[3] ?? m[2]);
        const expected = [...r].filter((x) => x + 1 >= lo && x + 1 <= hi).length;
        assert.equal(Number(m[4]), expected, `${c.name} ${label}`);
        total += expected;
      }
      assert.equal(total, r.length, `${c.name}: the bins miss some queries`);
    }
    // example queries: each lists five hits, the right one marked where it is among them
    const examples = await page.evaluate(() =>
      [...document.querySelectorAll('#examples-t2i ol.hits')].map((ol) =>
        [...ol.querySelectorAll('li')].map((li) => li.textContent ?? ''),
      ),
    );
    assert.ok(examples.length >= 4);
    const captions = readCaptions(path.join(dataPath, DATA_NAME, 'test_caps.txt'));
    const heads = await page.evaluate(() =>
      [...document.querySelectorAll('#examples-t2i p.query')].map((p) => p.textContent ?? ''),
    );
    assert.equal(heads.length, examples.length, 'one query line per example');
    heads.forEach((h, k) => {
      const c = Number(/^caption (\d+):/.exec(h)![1]);
      assert.ok(h.includes(captions[c].trim()));
      const right = Math.floor(c / 5);
      assert.equal(examples[k].length, 5);
      for (const li of examples[k]) {
        const img = Number(/image (\d+)/.exec(li)![1]);
        assert.equal(li.startsWith('✓'), img === right, li);
      }
      // the right image's rank shown matches the metrics
      assert.ok(h.includes(`its image ${right} ranks ${ranks['ranks-t2i'][c] + 1}`), h);
    });
  },
);

/** `vsl query` on the trained checkpoint. */
const query = (...args: string[]) => runVsl(['query', '--model', path.join(run, 'model_best.h5'), ...args]);

/** argmax over the images of caption c's column (the lowest index among ties, as the metrics' rule). */
function bestImage(c: number): number {
  let best = 0;
  for (let i = 1; i < TEST_IMAGES; i++) if (sims[i * 5 * TEST_IMAGES + c] > sims[best * 5 * TEST_IMAGES + c]) best = i;
  return best;
}

test('vsl query on the trained checkpoint: test captions rank their own image first, with the eval scores', async () => {
  const captions = readCaptions(path.join(dataPath, DATA_NAME, 'test_caps.txt'));
  const nCap = 5 * TEST_IMAGES;
  const q = await query('--top', '3', '--json', '--workers', '2', ...captions); // the worker pool
  assert.equal(q.code, 0, q.stderr);
  const out = JSON.parse(q.stdout) as {
    nImages: number;
    sentences: { text: string; hits: { rank: number; image: number; score: number; captions: string[] }[] }[];
  };
  assert.equal(out.nImages, TEST_IMAGES);
  assert.equal(out.sentences.length, nCap);
  let ownFirst = 0;
  out.sentences.forEach((s, c) => {
    assert.equal(s.hits.length, 3);
    assert.equal(s.hits[0].image, bestImage(c), `caption ${c}`);
    for (const h of s.hits) {
      assert.ok(Math.abs(h.score - sims[h.image * nCap + c]) < 1e-5, `caption ${c}, image ${h.image}`);
      assert.deepEqual(h.captions, captions.slice(5 * h.image, 5 * h.image + 5));
    }
    if (s.hits[0].image === Math.floor(c / 5)) ownFirst++;
  });
  // as often as the evaluation's t2i R@1 says, and well above chance (1 in 20): the checkpoint is trained
  assert.equal(ownFirst, Math.round((evalJson.result.t2i.r1 * nCap) / 100));
  assert.ok(ownFirst >= 3 * (nCap / TEST_IMAGES), `only ${ownFirst} of ${nCap} captions find their image first`);

  // the text a person reads: the caption's own image on the first line of the list
  const c = out.sentences.findIndex((s, k) => s.hits[0].image === Math.floor(k / 5));
  const t = await query('--top', '2', captions[c]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, new RegExp(`\\n +1\\. image ${Math.floor(c / 5)} +score `));
  assert.ok(t.stdout.includes(captions[c].trim()));
});

test('vsl query --image N: the captions ranked for the image, ground truth marked, ranks as the evaluation', async () => {
  const nCap = 5 * TEST_IMAGES;
  const ranks = i2tRanks(sims, TEST_IMAGES, nCap);
  const image = 7;
  const q = await query('--image', String(image), '--top', '8', '--json');
  assert.equal(q.code, 0, q.stderr);
  const out = (JSON.parse(q.stdout) as { image: ImageResult }).image;
  assert.deepEqual(
    out.captions.map((c) => c.caption),
    [35, 36, 37, 38, 39],
  );
  assert.equal(out.firstGroundTruthRank, ranks[image] + 1);
  assert.equal(out.hits.length, 8);
  for (const h of out.hits) {
    assert.equal(h.groundTruth, Math.floor(h.caption / 5) === image);
    assert.ok(Math.abs(h.score - sims[image * nCap + h.caption]) < 1e-5);
  }
  const t = await query('--image', String(image), '--top', '100');
  assert.equal(t.code, 0, t.stderr);
  const marked = t.stdout.split('\n').filter((l) => /^ +\d+\. \* caption/.test(l));
  assert.deepEqual(
    marked.map((l) => Number(/caption (\d+)/.exec(l)![1])).sort((a, b) => a - b),
    [35, 36, 37, 38, 39],
  );
});

test('vsl query: words outside the vocabulary named in a warning; bad input is one line', async () => {
  const model = path.join(run, 'model_best.h5');
  const q = await runVsl(['query', '--model', model, '--top', '1', 'a zorblax near the quuxes']);
  assert.equal(q.code, 0, q.stderr);
  const warn = q.stderr.split('\n').find((l) => l.includes('not in the vocabulary'));
  assert.ok(warn && warn.includes('zorblax') && warn.includes('quuxes'), q.stderr);
  const r = await runVsl(['query', '--model', path.join(tmp, 'nope.h5'), 'a dog']);
  assert.notEqual(r.code, 0);
  assert.equal(errorLine(r.stderr), `vsl: ${path.join(tmp, 'nope.h5')}: model file not found`);
  assert.equal(r.stdout, '');
  const o = { model, split: 'test', top: '3' };
  await rejectsWith(runQuery([], { ...o, image: '20' }), ['--image: expected an image index from 0 to 19', 'found 20']);
  await rejectsWith(runQuery([], o), ['expected a sentence']);
  await rejectsWith(runQuery(['a dog'], { ...o, image: '1' }), ['either sentences or --image N']);
  await rejectsWith(runQuery(['a dog'], { ...o, top: '0' }), ['--top: expected an integer >= 1']);
  await rejectsWith(runQuery(['a dog'], { ...o, split: 'nosuch' }), ['nosuch_ims.npy: file not found']);
});
