// Issue 13, item 5: validation scores on the main thread and score workers side by side (--val-workers), with the
// same figures as on the main thread alone; the default fits the memory bound; and a run resumed from a
// checkpoint older than its last validation does not compute and log that validation again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { defaultModelConfig } from '../../src/model/config.js';
import { GiB } from '../../src/ops/memoryGuard.js';
import { defaultValThreads, loggedValidation } from '../../src/train/validate.js';
import {
  makeData,
  readMetrics,
  rmrf,
  runVsl,
  tempDir,
  TINY_MODEL,
  trainRun,
  type ValidationRecord,
} from './trainHelpers.js';

let tmp = '';
let dataPath = '';

before(() => {
  tmp = tempDir('validation');
  dataPath = makeData(tmp, 8, 12); // dev: 12 images = 3 image blocks, so 2 threads both get some
});
after(() => rmrf(tmp));

const args = (run: string, epochs: number, extra: string[] = []) => [
  ...trainRun(dataPath, run),
  ...TINY_MODEL,
  '--module',
  'SAF',
  '--batch-size',
  '10',
  '--num-epochs',
  String(epochs),
  '--learning-rate',
  '0.002',
  '--seed',
  '5',
  '--backend',
  'wasm',
  '--workers',
  '1',
  ...extra,
];

test('--val-workers 2 (main thread + a score worker) logs the figures of --val-workers 1', async () => {
  const [a, b] = await Promise.all([
    runVsl(args(path.join(tmp, 'one'), 1, ['--val-workers', '1'])),
    runVsl(args(path.join(tmp, 'two'), 1, ['--val-workers', '2'])),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const ma = readMetrics(path.join(tmp, 'one', 'metrics.jsonl'));
  const mb = readMetrics(path.join(tmp, 'two', 'metrics.jsonl')) as unknown as Record<string, unknown>[];
  assert.equal(mb.length, 1);
  assert.equal(mb[0].threads, 2);
  for (const k of ['i2t', 't2i', 'rsum', 'weights'] as const)
    assert.deepEqual(mb[0][k], (ma[0] as unknown as Record<string, unknown>)[k], k);
});

test('a resumed run takes a validation already in metrics.jsonl for the same weights instead of redoing it', async () => {
  const run = path.join(tmp, 'resumed');
  const first = await runVsl(args(run, 1));
  assert.equal(first.code, 0, first.stderr);
  const ck1 = path.join(tmp, 'after-epoch-0.h5');
  fs.copyFileSync(path.join(run, 'checkpoint_last.h5'), ck1);
  const second = await runVsl(args(run, 2, ['--resume', ck1]));
  assert.equal(second.code, 0, second.stderr);
  const logged = readMetrics(path.join(run, 'metrics.jsonl'));
  assert.equal(logged.length, 2);
  // as if the second run had died after logging epoch 1's validation, before writing its checkpoint
  const third = await runVsl(args(run, 2, ['--resume', ck1]));
  assert.equal(third.code, 0, third.stderr);
  assert.deepEqual(readMetrics(path.join(run, 'metrics.jsonl')), logged, 'no validation logged twice');
  const reused = fs
    .readFileSync(path.join(run, 'train.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('validation already logged: not redone'));
  assert.equal(reused.length, 1);
  assert.equal((JSON.parse(reused[0]) as { epoch?: unknown }).epoch, 1);
});

test('loggedValidation matches epoch, iteration, place and weights; skips a torn last line', () => {
  const rec = (o: object) =>
    JSON.stringify({
      epoch: 1,
      iteration: 8,
      where: 'end of epoch',
      weights: 'w1',
      i2t: { r1: 10, r5: 20, r10: 30, medr: 4, meanr: 5 },
      t2i: { r1: 1, r5: 2, r10: 3, medr: 6, meanr: 7 },
      rsum: 66,
      ...o,
    });
  const lines = [rec({ weights: 'w0' }), rec({}), '{"epoch": 2, "iter'].join('\n');
  const at = { epoch: 1, iteration: 8, where: 'end of epoch', weights: 'w1' };
  assert.equal(loggedValidation(lines, at)?.rsum, 66);
  assert.equal(loggedValidation(lines, { ...at, weights: 'w2' }), null);
  assert.equal(loggedValidation(lines, { ...at, iteration: 9 }), null);
});

test('default validation threads: what fits the 4 GiB bound beside the training heaps', () => {
  const sgr = defaultModelConfig({ module: 'SGR', vocabSize: 100 });
  const base = { backend: 'wasm', config: sgr, pairs: 5e6, freeBytes: 20 * GiB, cores: 2 };
  // batch 32 at default dims: ~3.1 GB resident -> one 0.8 GiB worker fits
  assert.equal(defaultValThreads({ ...base, rssBytes: 3.1e9 }), 2);
  // batch 128: ~6 GB resident, over the bound already -> the main thread alone
  assert.equal(defaultValThreads({ ...base, rssBytes: 6.0e9 }), 1);
  assert.equal(defaultValThreads({ ...base, rssBytes: 1e9, cores: 8 }), 4);
  assert.equal(defaultValThreads({ ...base, rssBytes: 1e9, freeBytes: 1 * GiB }), 1);
  assert.equal(defaultValThreads({ ...base, rssBytes: 1e9, pairs: 5e4 }), 1); // the demo's dev split
  assert.equal(defaultValThreads({ ...base, rssBytes: 1e9, backend: 'tensorflow' }), 1);
});

test('--val-engine onnx (the weights exported in memory at each validation) logs the dev figures of --val-engine tfjs', async () => {
  const runs = { onnx: path.join(tmp, 'val-onnx'), tfjs: path.join(tmp, 'val-tfjs') };
  const [a, b] = await Promise.all([
    runVsl(args(runs.onnx, 2, ['--val-engine', 'onnx'])),
    runVsl(args(runs.tfjs, 2, ['--val-engine', 'tfjs'])),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  type Full = ValidationRecord & { weights: string; i2t: unknown; t2i: unknown };
  const ma = readMetrics(path.join(runs.onnx, 'metrics.jsonl')) as Full[];
  const mb = readMetrics(path.join(runs.tfjs, 'metrics.jsonl')) as Full[];
  assert.equal(ma.length, 2);
  ma.forEach((r, k) => {
    assert.equal(r.weights, mb[k].weights, 'training stays on tfjs: the same weights at each validation');
    assert.ok(Math.abs(r.rsum - mb[k].rsum) < 1e-6, `rsum ${r.rsum} (onnx) vs ${mb[k].rsum} (tfjs)`);
    assert.deepEqual(r.i2t, mb[k].i2t);
    assert.deepEqual(r.t2i, mb[k].t2i);
  });
  const runRecord = (dir: string) =>
    fs
      .readFileSync(path.join(dir, 'train.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg?: string; valEngine?: string; backendsSkipped?: unknown })
      .find((r) => r.msg === 'run');
  assert.equal(runRecord(runs.onnx)?.valEngine, 'onnx');
  assert.equal(runRecord(runs.tfjs)?.valEngine, 'tfjs');
  assert.ok(Array.isArray(runRecord(runs.onnx)?.backendsSkipped), 'the run record keeps the skipped backends');
});
