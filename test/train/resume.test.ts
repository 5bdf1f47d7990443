// Resume: 2 epochs straight vs 1 epoch + `--resume checkpoint_last.h5` + 1 epoch give identical losses,
// step for step (cpu backend, same seed, dropout on, each run a child process `vsl train --backend cpu`).
// The second epoch also switches to hardest negatives (warm-up 1) and decays the lr (lr-update 1), so the
// resumed run must restore the epoch, the Adam state, the BatchNorm statistics and the data/dropout streams.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadCheckpoint } from '../../src/io/checkpoint.js';
import { makeData, readMetrics, readSteps, rmrf, runVsl, tempDir, TINY_MODEL, trainRun } from './trainHelpers.js';

let tmp = '';
let dataPath = '';

before(() => {
  tmp = tempDir('resume');
  dataPath = makeData(tmp, 8, 3); // 40 train captions = 4 steps of 10 per epoch; dev 3 images
});
after(() => rmrf(tmp));

const args = (run: string, epochs: number) => [
  ...trainRun(dataPath, run),
  ...TINY_MODEL,
  '--module',
  'SAF',
  '--sgr-step',
  '1',
  '--batch-size',
  '10',
  '--num-epochs',
  String(epochs),
  '--warmup-sum-epochs',
  '1',
  '--lr-update',
  '1',
  '--learning-rate',
  '0.002',
  '--log-step',
  '1',
  '--seed',
  '5',
  '--backend',
  'cpu',
];

test('2 epochs straight = 1 epoch + resume + 1 epoch, loss for loss', async () => {
  const straight = path.join(tmp, 'straight');
  const split = path.join(tmp, 'split');
  const t0 = performance.now();
  const [a, b1] = await Promise.all([runVsl(args(straight, 2)), runVsl(args(split, 1))]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b1.code, 0, b1.stderr);
  const ck = await loadCheckpoint(path.join(split, 'checkpoint_last.h5'));
  assert.equal(ck.epoch, 1);
  assert.deepEqual(ck.dataOrder, { seed: 5, epoch: 1, step: 0 });
  assert.equal(ck.iteration, 4);
  assert.equal(ck.optimizer?.step, 4);
  const b2 = await runVsl([...args(split, 2), '--resume', path.join(split, 'checkpoint_last.h5')]);
  assert.equal(b2.code, 0, b2.stderr);
  process.stderr.write(`# resume: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);

  const sa = readSteps(path.join(straight, 'train.log'));
  const sb = readSteps(path.join(split, 'train.log')); // both halves append to the same train.log
  assert.equal(sa.length, 8);
  const key = (r: (typeof sa)[number]) => [r.epoch, r.step, r.iteration, r.lr, r.maxViolation];
  assert.deepEqual(sb.map(key), sa.map(key));
  assert.deepEqual(
    sa.map((r) => r.maxViolation),
    [false, false, false, false, true, true, true, true],
  );
  // exact equality: same backend, same ops in the same order, state restored bit for bit (float32 in the .h5)
  assert.deepEqual(
    sb.map((r) => r.loss),
    sa.map((r) => r.loss),
  );
  assert.deepEqual(
    sb.map((r) => r.hinge),
    sa.map((r) => r.hinge),
  );
  assert.deepEqual(
    sb.map((r) => r.gradNorm),
    sa.map((r) => r.gradNorm),
  );
  const ma = readMetrics(path.join(straight, 'metrics.jsonl'));
  const mb = readMetrics(path.join(split, 'metrics.jsonl'));
  assert.equal(ma.length, 2, 'one validation per epoch');
  assert.deepEqual(
    mb.map((r) => r.rsum),
    ma.map((r) => r.rsum),
  );

  // and the final weights agree exactly
  const wa = (await loadCheckpoint(path.join(straight, 'checkpoint_last.h5'))).weights;
  const wb = (await loadCheckpoint(path.join(split, 'checkpoint_last.h5'))).weights;
  assert.ok(wa.size > 0, 'no weights');
  assert.deepEqual([...wb.keys()].sort(), [...wa.keys()].sort());
  for (const [k, v] of wa) assert.deepEqual(wb.get(k)!.data, v.data, k);
});
