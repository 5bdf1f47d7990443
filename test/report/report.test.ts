// The report's parts without a browser: reading a run directory (its bad inputs each a one-line error naming
// the file), the charts drawn from made-up logs (one vertex per logged step, a resumed run's repeated steps
// counted once), the rank bins of the eval report and the top-k of the examples and `vsl query`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createH5 } from '../../src/io/h5.js';
import { saveCheckpoint } from '../../src/io/checkpoint.js';
import { topK } from '../../src/eval/topk.js';
import { rankBins } from '../../src/report/evalReport.js';
import { readRun } from '../../src/report/runData.js';
import { runReportHtml, writeRunReport } from '../../src/report/runReport.js';
import { Rng } from '../../src/util/rng.js';
import { rejectsWith } from '../helpers/asserts.js';
import { errorLine, runVsl } from '../train/trainHelpers.js';

let tmp = '';
before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-report-'))));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const OPTIONS = {
  model: { module: 'SAF', vocabSize: 50, imgDim: 32, wordDim: 16, embedSize: 32, simDim: 16, sgrStep: 3 },
  data: { dataName: 'syn_precomp', dataPath: '/data' },
  train: { numEpochs: 2, batchSize: 10, learningRate: 0.002, lrUpdate: 1, gradClip: 2, semanticLoss: 'visual' },
};

function step(epoch: number, iteration: number, semanticLoss = 'visual') {
  const v = 1 / iteration;
  return {
    level: 30,
    msg: 'step',
    epoch,
    step: iteration - 1,
    steps: 5,
    iteration,
    lr: 0.002 * 0.1 ** epoch,
    semanticLoss,
    loss: 3 + v,
    lossAvg: 3.5,
    hinge: 2 + v,
    hingeAvg: 2.5,
    semantic: semanticLoss === 'none' ? 0 : 1,
    semanticAvg: semanticLoss === 'none' ? 0 : 1,
    gradNorm: 5 * v,
    batchTime: 0.1,
    dataTime: 0.01,
  };
}

const recall = (r: number) => ({ r1: r, r5: r + 10, r10: r + 20, medr: 2, meanr: 3.5 });
const validation = (epoch: number, iteration: number, r: number) => ({
  epoch,
  iteration,
  where: 'end of epoch',
  i2t: recall(r),
  t2i: recall(r),
  rsum: 6 * r + 60,
  seconds: 0.5,
});

/** A run directory with the given train.log records and validations. */
function runDir(name: string, records: object[], validations: object[] = []): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'train.log'), records.map((r) => JSON.stringify(r) + '\n').join(''));
  if (validations.length)
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), validations.map((r) => JSON.stringify(r) + '\n').join(''));
  return dir;
}

const runRecord = { level: 30, msg: 'run', backend: 'cpu', threads: 1, train: 50, dev: 25, options: OPTIONS };

/** vertices of each line mark of the chart `name` in a page */
function lineVertices(html: string, name: string): number[] {
  const fig = new RegExp(`data-chart="${name}"[^>]*>([\\s\\S]*?)</figure>`).exec(html)![1];
  return [...fig.matchAll(/aria-roledescription="line mark" d="([^"]*)"/g)].map((m) => m[1].match(/[ML]/g)!.length);
}

test('a resumed run: repeated iterations drawn once, with the resumed values; one vertex per logged step', async () => {
  // epoch 0 logged iterations 1-5; the run was killed after logging 6-7 of epoch 1 and resumed from the end of
  // epoch 0, logging 6-10 again
  const first = [1, 2, 3, 4, 5].map((i) => step(0, i));
  const killed = [6, 7].map((i) => ({ ...step(1, i), hinge: 99 }));
  const resumed = [6, 7, 8, 9, 10].map((i) => step(1, i));
  const dir = runDir(
    'resumed',
    [
      runRecord,
      ...first,
      { level: 30, msg: 'epoch', epoch: 0, steps: 5, seconds: 2 },
      ...killed,
      runRecord,
      ...resumed,
    ],
    [validation(0, 5, 10), validation(1, 10, 30)],
  );
  const run = await readRun(dir);
  assert.equal(run.steps.length, 10);
  assert.ok(run.steps.every((s) => s.hinge < 99));
  const html = await runReportHtml(run);
  for (const name of ['hinge', 'total']) assert.deepEqual(lineVertices(html, name), [10, 10], name);
  assert.deepEqual(lineVertices(html, 'gradNorm'), [10]);
  assert.deepEqual(lineVertices(html, 'recall'), Array(6).fill(2));
  assert.match(html, /resumed 1 time\(s\)/);
  assert.match(html, /epoch 1: dev rsum 240\.0 \(model_best\.h5\)/);
  assert.match(html, /mean 2\.0 s per epoch \(epoch 0: 2\.0 s\)/);
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//); // nothing to fetch
});

test('without the semantic term the report says so instead of drawing zeros; no validation yet is said too', async () => {
  const dir = runDir('nosemantic', [runRecord, ...[1, 2, 3].map((i) => step(0, i, 'none'))]);
  const html = await runReportHtml(await readRun(dir));
  assert.doesNotMatch(html, /data-chart="semantic"/);
  assert.match(html, /No visual semantic loss in this run/);
  assert.match(html, /No validation yet/);
  assert.deepEqual(lineVertices(html, 'hinge'), [3, 3]);
});

test('a train.log without run records (older runs): the options come from the checkpoint beside it', async () => {
  const dir = runDir('older', [step(0, 1), step(0, 2)]);
  const weights = new Map([['x', { shape: [1], data: new Float32Array(1) }]]);
  await saveCheckpoint(path.join(dir, 'checkpoint_last.h5'), {
    weights,
    options: OPTIONS,
    epoch: 1,
    iteration: 2,
    bestRsum: 0,
  });
  const run = await readRun(dir);
  assert.deepEqual(run.options, OPTIONS);
  assert.equal(run.optionsFrom, path.join(dir, 'checkpoint_last.h5'));
  const html = await runReportHtml(run);
  assert.match(html, /backend<\/th><td>not logged/);
  assert.match(html, /time per epoch<\/th><td>not logged; last step took 0\.1 s/);
});

test('bad run directories: one clear error naming the file and what was expected', async () => {
  await rejectsWith(readRun(path.join(tmp, 'absent')), ['absent: run directory not found']);
  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty);
  await rejectsWith(readRun(empty), ['train.log: file not found (expected the train.log that vsl train writes']);
  await rejectsWith(readRun(runDir('nosteps', [runRecord])), [
    'train.log: records: expected step records',
    'found none',
  ]);
  const bad = runDir('badline', [runRecord, step(0, 1)]);
  fs.appendFileSync(path.join(bad, 'train.log'), '{"msg":"step", "epoch": 0,\n');
  await rejectsWith(readRun(bad), ['train.log: line 3: expected a JSON record']);
  const { gradNorm: _g, ...noNorm } = step(0, 1);
  await rejectsWith(readRun(runDir('nonorm', [runRecord, noNorm])), [
    "train.log: line 2 (step record): field 'gradNorm': Required",
  ]);
  await rejectsWith(readRun(runDir('norun', [step(0, 1)])), ['a run record (msg "run") with the options']);
  const badMetrics = runDir('badmetrics', [runRecord, step(0, 1)], [{ epoch: 0 }]);
  await rejectsWith(readRun(badMetrics), ["metrics.jsonl: line 1 (validation record): field 'iteration'"]);
  // a checkpoint that is not vsl's: not HDF5 at all, and HDF5 without vsl's format attribute
  const notH5 = runDir('noth5', [runRecord, step(0, 1)]);
  fs.writeFileSync(path.join(notH5, 'model_best.h5'), 'PK\x03\x04 a torch zip, say');
  await rejectsWith(readRun(notH5), ['model_best.h5: file: expected an HDF5 file']);
  const other = runDir('otherh5', [runRecord, step(0, 1)]);
  (await createH5(path.join(other, 'checkpoint_last.h5'))).close();
  await rejectsWith(readRun(other), [
    'checkpoint_last.h5: attribute format: expected "vsl-checkpoint-1" (a checkpoint written by vsl train), found no format attribute',
  ]);
  const ok = runDir('ok', [runRecord, step(0, 1)]);
  await rejectsWith(writeRunReport(ok, path.join(tmp, 'no', 'dir', 'r.html')), ['cannot write the report (directory']);
});

test('vsl report on a missing run directory: one line, non-zero exit, nothing on stdout', async () => {
  const r = await runVsl(['report', path.join(tmp, 'nothere')]);
  assert.notEqual(r.code, 0);
  assert.equal(errorLine(r.stderr), `vsl: ${path.join(tmp, 'nothere')}: run directory not found`);
  assert.equal(r.stdout, '');
});

test('rank bins: 1, 2, 3-5, 6-10, ... up to the largest possible rank, every query counted once', () => {
  const rng = new Rng(5);
  for (const maxRank of [1, 7, 20, 100, 5000, 30000]) {
    const ranks0 = Int32Array.from({ length: 400 }, () => Math.floor(rng.float() * maxRank));
    const bins = rankBins(ranks0, maxRank);
    assert.equal(
      bins.reduce((a, b) => a + b.queries, 0),
      400,
    );
    for (const b of bins) {
      const [lo, hi] = b.bin.startsWith('>')
        ? [Number(b.bin.slice(1)) + 1, Infinity]
        : b.bin
            .split('-')
            .map(Number)
            .concat(Number(b.bin.split('-').at(-1)));
      assert.equal(b.queries, [...ranks0].filter((r) => r + 1 >= lo && r + 1 <= hi).length, b.bin);
    }
    const last = bins.at(-1)!.bin;
    assert.ok(last.startsWith('>') || Number(last.split('-').at(-1)) >= maxRank, `${maxRank}: ${last}`);
  }
  assert.deepEqual(
    rankBins(Int32Array.from([0, 1, 2, 9]), 10).map((b) => b.bin),
    ['1', '2', '3-5', '6-10'],
  );
});

test('topK: the k highest, ties to the lower index, NaN last; as a full sort', () => {
  const rng = new Rng(9);
  for (let trial = 0; trial < 50; trial++) {
    const n = 1 + Math.floor(rng.float() * 40);
    const s = Array.from({ length: n }, () => (rng.float() < 0.1 ? NaN : Math.round(rng.float() * 8)));
    const k = Math.floor(rng.float() * (n + 3));
    const key = (i: number) => (Number.isNaN(s[i]) ? -Infinity : s[i]);
    const sorted = [...s.keys()].sort(
      (a, b) => key(b) - key(a) || (Number.isNaN(s[a]) ? 1 : 0) - (Number.isNaN(s[b]) ? 1 : 0) || a - b,
    );
    assert.deepEqual(
      topK(n, (i) => s[i], k).map((h) => h.index),
      sorted.slice(0, k),
    );
  }
});
