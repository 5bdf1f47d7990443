// vsl train beside the reference's own train.py (test/fixtures/reference/, scripts/make_reference_fixtures.sh):
// from the checkpoint the reference wrote at its initialisation, dropout 0, on a split that fits one batch, vsl's
// losses follow the reference's logged ones step by step (1e-3 relative; the reference logs 4 decimals) and its
// dev rsum epoch by epoch; and the reference's own checkpoint_1.pth.tar resumes where that run stood.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadCheckpoint } from '../../src/io/checkpoint.js';
import {
  makeData,
  readMetrics,
  readReferenceLog,
  readSteps,
  REF_FIXTURES,
  REF_TRAINING,
  rmrf,
  runVsl,
  tempDir,
  trainRun,
} from './trainHelpers.js';

let tmp = '';
let dataPath = '';

before(() => {
  tmp = tempDir('reference');
  dataPath = makeData(tmp, 8, 10); // the fixtures' data: vsl synth --images 8 --eval-images 10 --img-dim 32 --seed 3
});
after(() => rmrf(tmp));

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

const trainArgs = (run: string, module: string, extra: string[]) => [
  ...trainRun(dataPath, run),
  ...REF_TRAINING,
  '--module',
  module,
  '--dropout',
  '0',
  ...extra,
];

for (const module of ['SGR', 'SAF']) {
  test(`${module}: --init-from the reference's initial checkpoint follows its train.py step by step`, async () => {
    const lc = module.toLowerCase();
    const run = path.join(tmp, `init_${lc}`);
    const r = await runVsl(trainArgs(run, module, ['--init-from', path.join(REF_FIXTURES, `${lc}_init.pth.tar`)]));
    assert.equal(r.code, 0, r.stderr);
    const ref = readReferenceLog(path.join(REF_FIXTURES, `${lc}_train.jsonl`));
    const got = readSteps(path.join(run, 'train.log'));
    assert.equal(ref.steps.length, 4);
    assert.equal(ref.validations.length, 4);
    assert.deepEqual(
      got.map((s) => [s.epoch, s.step, s.iteration, s.lr]),
      ref.steps.map((s) => [s.epoch, s.step, s.Eit, s.lr]),
    );
    got.forEach((s, i) => {
      const x = ref.steps[i];
      for (const [mine, theirs, what] of [
        [s.loss, x.Loss, 'loss'],
        [s.hinge, x.Tripliet_loss, 'hinge'],
        [s.semantic, x.Visual_Semantic_loss, 'visual semantic loss'],
      ] as const)
        assert.ok(rel(mine, theirs) <= 1e-3, `iteration ${s.iteration} ${what}: vsl ${mine}, reference ${theirs}`);
    });
    const metrics = readMetrics(path.join(run, 'metrics.jsonl'));
    assert.deepEqual(
      metrics.map((m) => [m.epoch, Math.round(m.rsum * 100) / 100]),
      ref.validations.map((v) => [v.epoch, v.rsum]),
    );
  });
}

test("--resume the reference's checkpoint_1.pth.tar: epoch 2 at Eiters 2, best rsum kept, Adam restarts", async () => {
  const run = path.join(tmp, 'resume_ref');
  const ck = path.join(REF_FIXTURES, 'sgr_checkpoint_1.pth.tar');
  const r = await runVsl(trainArgs(run, 'SGR', ['--resume', ck, '--num-epochs', '3']));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /holds no optimizer state \(the reference saves none\); Adam restarts from zero moments/);
  const ref = readReferenceLog(path.join(REF_FIXTURES, 'sgr_train.jsonl'));
  const steps = readSteps(path.join(run, 'train.log'));
  assert.deepEqual(
    steps.map((s) => [s.epoch, s.step, s.iteration, s.lr]),
    [[2, 0, 3, 0.002]],
  );
  // The first step's forward runs on the checkpoint's weights and BatchNorm buffers, as the reference's third
  // step did; only its update differs (Adam's moments start at zero here).
  const third = ref.steps[2];
  assert.ok(rel(steps[0].loss, third.Loss) <= 1e-3, `loss ${steps[0].loss} vs the reference's ${third.Loss}`);
  const best = Math.max(...ref.validations.slice(0, 2).map((v) => v.rsum));
  const last = await loadCheckpoint(path.join(run, 'checkpoint_last.h5'));
  assert.equal(last.epoch, 3);
  assert.equal(last.iteration, 3);
  assert.equal(last.optimizer?.step, 1);
  const dev = readMetrics(path.join(run, 'metrics.jsonl'))[0];
  assert.equal(last.bestRsum, Math.max(best, dev.rsum));
});
