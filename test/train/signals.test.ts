// SIGINT / SIGTERM mid-epoch: `vsl train` finishes the current step, writes a loadable checkpoint_last.h5
// at that position and exits 130 / 143; resuming from it continues with the next step and replays the
// losses of an uninterrupted run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCheckpoint } from '../../src/io/checkpoint.js';
import { makeData, readSteps, rmrf, runVsl, startVsl, tempDir, TINY_MODEL, trainRun } from './trainHelpers.js';

let tmp = '';
let dataPath = '';
const STEPS = 20; // 40 images = 200 captions, batches of 10

before(() => {
  tmp = tempDir('signal');
  dataPath = makeData(tmp, 40, 3);
});
after(() => rmrf(tmp));

const args = (run: string) => [
  ...trainRun(dataPath, run),
  ...TINY_MODEL,
  '--module',
  'SAF',
  '--sgr-step',
  '1',
  '--batch-size',
  '10',
  '--num-epochs',
  '1',
  '--log-step',
  '1',
  '--seed',
  '2',
  '--backend',
  'wasm',
];

/** Start a run, wait until train.log shows a step, send `sig`; returns the exit and the run dir. */
async function interrupt(sig: 'SIGINT' | 'SIGTERM') {
  const run = path.join(tmp, sig);
  const r = startVsl(args(run));
  const log = path.join(run, 'train.log');
  const deadline = Date.now() + 60_000;
  while (readSteps(log).length === 0) {
    assert.ok(Date.now() < deadline, 'no step in train.log after 60 s');
    assert.equal(r.child.exitCode, null, 'vsl train exited before its first step');
    await sleep(20);
  }
  r.child.kill(sig);
  const res = await r.done;
  return { run, res };
}

async function checkCheckpoint(run: string) {
  const file = path.join(run, 'checkpoint_last.h5');
  assert.ok(fs.existsSync(file), 'no checkpoint_last.h5');
  const ck = await loadCheckpoint(file);
  assert.ok(ck.weights.size > 0, 'no weights');
  for (const [k, a] of ck.weights) {
    assert.ok(a.data.length > 0, k);
    if (a.data instanceof Float32Array) assert.ok(a.data.every(Number.isFinite), `${k} not finite`);
  }
  assert.ok(ck.optimizer && ck.optimizer.m.size > 0, 'no Adam state');
  const order = ck.dataOrder as { epoch: number; step: number };
  const steps = readSteps(path.join(run, 'train.log'));
  // the checkpoint sits right after the last logged step, mid-epoch
  assert.equal(order.epoch, 0);
  assert.equal(order.step, steps[steps.length - 1].step + 1);
  assert.equal(ck.iteration, steps.length);
  // How far the run got before the signal landed depends on the machine's speed (the signal goes out once a step
  // is logged): any step of the epoch will do, the last one included, as long as the checkpoint sits right after
  // the last logged step and no validation ran.
  assert.ok(order.step >= 1 && order.step <= STEPS, `stopped at step ${order.step} of ${STEPS}`);
  assert.ok(!fs.existsSync(path.join(run, 'metrics.jsonl')), 'validated although stopped mid-epoch');
  return { file, stoppedAt: order.step };
}

test('SIGINT mid-epoch: loadable checkpoint, exit 130, resume continues exactly', async () => {
  const straight = path.join(tmp, 'straight');
  const [{ run, res }, full] = await Promise.all([interrupt('SIGINT'), runVsl(args(straight))]);
  assert.equal(full.code, 0, full.stderr);
  assert.equal(res.code, 130, `exit ${res.code} / ${res.signal}; stderr: ${res.stderr}`);
  const { file, stoppedAt } = await checkCheckpoint(run);
  assert.ok(
    res.stderr.includes(
      `vsl: stopped by SIGINT after epoch 0 step ${stoppedAt}; resume with: vsl train --resume ${file}`,
    ),
    res.stderr,
  );

  const resumed = await runVsl([...args(run), '--resume', file]);
  assert.equal(resumed.code, 0, resumed.stderr);
  const steps = readSteps(path.join(run, 'train.log'));
  assert.deepEqual(
    steps.map((r) => r.step),
    [...Array(STEPS).keys()],
    'a step was skipped or repeated',
  );
  assert.equal(steps[stoppedAt].iteration, stoppedAt + 1);
  // same backend (wasm) and seed: the interrupted-and-resumed run replays the uninterrupted one
  assert.deepEqual(
    steps.map((r) => r.loss),
    readSteps(path.join(straight, 'train.log')).map((r) => r.loss),
  );
});

test('SIGTERM mid-epoch: loadable checkpoint, exit 143', async () => {
  const { run, res } = await interrupt('SIGTERM');
  assert.equal(res.code, 143, `exit ${res.code} / ${res.signal}; stderr: ${res.stderr}`);
  const { file, stoppedAt } = await checkCheckpoint(run);
  assert.ok(
    res.stderr.includes(
      `vsl: stopped by SIGTERM after epoch 0 step ${stoppedAt}; resume with: vsl train --resume ${file}`,
    ),
    res.stderr,
  );
});
