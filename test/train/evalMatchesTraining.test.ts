// `vsl eval` of a model trained by `vsl train` reproduces the final validation figures the training logged
// for the same split (issue #5): both use the same encoder and scorer, but eval goes through the saved HDF5
// checkpoint, the checkpoint reader and the worker pool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { resolveOptions } from '../../src/train/options.js';
import { train } from '../../src/train/loop.js';
import { evaluateModel } from '../../src/eval/evaluate.js';
import { setLogLevel } from '../../src/util/log.js';
import { DATA_NAME, makeData, rmrf, tempDir } from './trainHelpers.js';

let tmp = '';
let dataPath = '';

before(() => {
  setLogLevel('warn');
  tmp = tempDir('evalmatch');
  dataPath = makeData(tmp, 40, 20);
});
after(() => rmrf(tmp));

test('eval of the trained checkpoint on dev equals the last logged validation', async () => {
  const run = path.join(tmp, 'run');
  const o = resolveOptions(
    {
      dataPath,
      dataName: DATA_NAME,
      modelName: run,
      module: 'SAF',
      imgDim: 32,
      wordDim: 16,
      embedSize: 32,
      simDim: 16,
      batchSize: 20,
      numEpochs: 1,
      learningRate: 0.005,
      logStep: 5,
      valStep: 100000,
      seed: 2,
      backend: 'wasm',
    },
    {},
    'eval-matches-training test',
  );
  await train(o);
  const logged = fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { i2t: Record<string, number>; t2i: Record<string, number>; rsum: number });
  const last = logged[logged.length - 1];
  for (const workers of [1, 2]) {
    const r = await evaluateModel({
      modelPath: path.join(run, 'checkpoint_last.h5'),
      split: 'dev',
      fold5: false,
      workers,
      backend: 'wasm',
    });
    for (const k of ['r1', 'r5', 'r10', 'medr', 'meanr'] as const) {
      assert.ok(
        Math.abs(r.result.i2t[k] - last.i2t[k]) < 1e-9,
        `i2t ${k} with ${workers} worker(s): ${r.result.i2t[k]} vs logged ${last.i2t[k]}`,
      );
      assert.ok(
        Math.abs(r.result.t2i[k] - last.t2i[k]) < 1e-9,
        `t2i ${k} with ${workers} worker(s): ${r.result.t2i[k]} vs logged ${last.t2i[k]}`,
      );
    }
    assert.ok(Math.abs(r.result.rsum - last.rsum) < 1e-9, `rsum ${r.result.rsum} vs logged ${last.rsum}`);
  }
});
