// Training on synthetic data raises dev rsum from chance to well above it: SAF with the warm-up recipe (summed
// hinge first, then the reference's hardest negatives), SGR with one reasoning step and the hinge alone before
// the semantic loss joins; and the collapse detector: unit checks on made-up logs (so it can fail), no collapse
// in the learning runs, and a collapse caught with hardest negatives from the start.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { resolveOptions } from '../../src/train/options.js';
import { train } from '../../src/train/loop.js';
import { setLogLevel } from '../../src/util/log.js';
import {
  DATA_NAME,
  chanceRsum,
  collapseHinge,
  detectCollapse,
  makeData,
  readMetrics,
  readSteps,
  rmrf,
  tempDir,
  type StepRecord,
} from './trainHelpers.js';

const TRAIN_IMAGES = 128; // 640 captions: 20 steps of 32 per epoch
const DEV_IMAGES = 40;
const B = 32;
const MARGIN = 0.2;
let tmp = '';
let dataPath = '';

// Small recipe that leaves the constant-score plateau within ~2 epochs on 2 cores (SAF, 64-d, lr 5e-3, no dropout).
const recipe = (modelName: string, over: Record<string, unknown>) =>
  resolveOptions(
    {
      dataPath,
      dataName: DATA_NAME,
      modelName,
      module: 'SAF',
      imgDim: 32,
      wordDim: 32,
      embedSize: 64,
      simDim: 32,
      batchSize: B,
      margin: MARGIN,
      learningRate: 0.005,
      dropout: 0,
      lrUpdate: 100,
      logStep: 1,
      valStep: 100000,
      seed: 1,
      backend: 'wasm',
    },
    over,
    'learning test',
  );

before(() => {
  setLogLevel('warn');
  tmp = tempDir('learn');
  dataPath = makeData(tmp, TRAIN_IMAGES, DEV_IMAGES);
});
after(() => rmrf(tmp));

function fakeSteps(hinges: number[], maxViolation: boolean, epoch = 0): StepRecord[] {
  return hinges.map((hinge, step) => ({
    epoch,
    step,
    steps: hinges.length,
    iteration: step + 1,
    lr: 1e-3,
    maxViolation,
    loss: hinge + 1,
    hinge,
    semantic: 1,
    gradNorm: 1,
  }));
}

test('chance rsum and the plateau values', () => {
  // 20 images / 100 captions: t2i 5 + 25 + 50; i2t 5 + 23.0 + 41.7 (1 − C(95,K)/C(100,K))
  assert.ok(Math.abs(chanceRsum(20) - 149.67) < 0.01, String(chanceRsum(20)));
  // 40 images / 200 captions: t2i 2.5 + 12.5 + 25; i2t 2.5 + 11.9 + 22.9
  assert.ok(Math.abs(chanceRsum(40) - 77.33) < 0.01, String(chanceRsum(40)));
  assert.equal(collapseHinge(20, 0.2, true), 8);
  assert.ok(Math.abs(collapseHinge(20, 0.2, false) - 152) < 1e-9);
});

test('collapse detector flags a stuck log and passes a learning one', () => {
  const o = { batchSize: 20, margin: 0.2, nCaptions: 65 }; // 3 full batches, a last one of 5
  const stuck = fakeSteps([8.001, 7.999, 8.0, 2 * 5 * 0.2], true);
  assert.deepEqual(
    detectCollapse(stuck, o).map((v) => v.collapsed),
    [true],
  );
  const stuckSum = fakeSteps([151.9, 152.0, 152.1, 2 * 5 * 4 * 0.2], false);
  assert.deepEqual(
    detectCollapse(stuckSum, o).map((v) => v.collapsed),
    [true],
  );
  const learning = fakeSteps([8.0, 7.2, 5.1, 1.0], true);
  assert.deepEqual(
    detectCollapse(learning, o).map((v) => v.collapsed),
    [false],
  );
  // one epoch stuck, the next one not
  const mixed = [...fakeSteps([8, 8, 8, 2], true, 0), ...fakeSteps([6, 4, 3, 1], true, 1)];
  assert.deepEqual(
    detectCollapse(mixed, o).map((v) => v.collapsed),
    [true, false],
  );
});

test('warm-up recipe: dev rsum rises well above chance, no collapsed epoch', async () => {
  const run = path.join(tmp, 'warmup');
  const t0 = performance.now();
  const s = await train(recipe(run, { numEpochs: 4, warmupSumEpochs: 3 }));
  const seconds = (performance.now() - t0) / 1000;
  const m = readMetrics(path.join(run, 'metrics.jsonl'));
  const chance = chanceRsum(DEV_IMAGES);
  const steps = readSteps(path.join(run, 'train.log'));
  const verdicts = detectCollapse(steps, { batchSize: B, margin: MARGIN, nCaptions: TRAIN_IMAGES * 5 });
  const report =
    `rsum per epoch ${m.map((r) => r.rsum).join(' ')}, chance ${chance.toFixed(1)}, ${seconds.toFixed(0)} s; ` +
    `hinge deviation from the plateau per epoch ${verdicts.map((v) => v.maxRelDev.toFixed(3)).join(' ')}`;
  process.stderr.write(`# learning: ${report}\n`);
  assert.equal(s.stoppedBySignal, null);
  assert.equal(m.length, 4);
  assert.equal(steps.length, 4 * 20);
  assert.deepEqual(
    steps.map((r) => r.maxViolation),
    [...Array<boolean>(60).fill(false), ...Array<boolean>(20).fill(true)],
  );
  const last = m[m.length - 1].rsum;
  // measured 95 -> 131 -> 220.5 -> 240.5 against chance 77.3 (3.1x; an earlier build, differing only in summation
  // order: 90.5 -> 141 -> 181 -> 278); asserted with some slack for other machines. With only two summed-hinge epochs the hardest-negative epochs that follow are fragile on this
  // tiny set (seen: 200, 146 and, one epoch later, a collapse to 74.5 with bit-level changes of the arithmetic),
  // so the recipe warms up for three.
  assert.ok(last > 2.2 * chance, `final rsum ${last} not > 2.2 x chance (${report})`);
  assert.ok(last > m[0].rsum + 50, `final rsum ${last} not well above the first validation ${m[0].rsum} (${report})`);
  assert.equal(s.bestRsum, Math.max(...m.map((r) => r.rsum)));
  assert.deepEqual(
    verdicts.map((v) => v.collapsed),
    [false, false, false, false],
    report,
  );
});

test('SGR, one reasoning step, hinge alone then + VSL: dev rsum rises well above chance', async () => {
  const run = path.join(tmp, 'sgr');
  const t0 = performance.now();
  const s = await train(
    recipe(run, { module: 'SGR', sgrStep: 1, maxViolation: false, numEpochs: 5, semanticWarmupEpochs: 2 }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const m = readMetrics(path.join(run, 'metrics.jsonl'));
  const steps = readSteps(path.join(run, 'train.log'));
  const chance = chanceRsum(DEV_IMAGES);
  const verdicts = detectCollapse(steps, { batchSize: B, margin: MARGIN, nCaptions: TRAIN_IMAGES * 5 });
  const report = `rsum per epoch ${m.map((r) => r.rsum).join(' ')}, chance ${chance.toFixed(1)}, ${seconds.toFixed(0)} s`;
  process.stderr.write(`# SGR learning: ${report}\n`);
  assert.equal(s.stoppedBySignal, null);
  assert.equal(m.length, 5);
  // the semantic term is off for the warm-up epochs, on (and non-zero) after them
  assert.deepEqual(
    steps.map((r) => r.semanticLoss),
    [...Array<string>(40).fill('none'), ...Array<string>(60).fill('visual')],
  );
  assert.ok(steps.slice(0, 40).every((r) => r.semantic === 0));
  assert.ok(steps.slice(40).some((r) => r.semantic > 0));
  // measured 93.5 -> 130 -> 169 -> 222 -> 269.5 against chance 77.3 (3.5x); with the semantic term from the start
  // 365.5 after 5 epochs, the hinge alone 258.5, three reasoning steps 262
  const last = m[m.length - 1].rsum;
  assert.ok(last > 2.2 * chance, `final rsum ${last} not > 2.2 x chance (${report})`);
  assert.ok(last > m[0].rsum + 50, `final rsum ${last} not well above the first validation ${m[0].rsum} (${report})`);
  assert.deepEqual(
    verdicts.map((v) => v.collapsed),
    [false, false, false, false, false],
    report,
  );
});

test('hardest negatives from the start: the detector catches the collapse', async () => {
  const run = path.join(tmp, 'maxviol');
  const t0 = performance.now();
  await train(recipe(run, { numEpochs: 2, warmupSumEpochs: 0 }));
  const steps = readSteps(path.join(run, 'train.log'));
  const verdicts = detectCollapse(steps, { batchSize: B, margin: MARGIN, nCaptions: TRAIN_IMAGES * 5 });
  const m = readMetrics(path.join(run, 'metrics.jsonl'));
  process.stderr.write(
    `# max-violation from the start: hinge ${steps.map((r) => r.hinge.toFixed(3)).join(' ')}; rsum ${m.map((r) => r.rsum).join(' ')}; ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
  );
  assert.equal(steps.length, 2 * 20);
  assert.ok(steps.every((r) => r.maxViolation));
  // the hinge slides onto the plateau 2·B·margin during epoch 0 (15.0 -> 12.9 against 12.8) and sits there
  assert.equal(verdicts.length, 2);
  assert.equal(verdicts[1].collapsed, true, `epoch 1 max deviation from the plateau ${verdicts[1].maxRelDev}`);
  assert.ok(
    m[m.length - 1].rsum < 1.5 * chanceRsum(DEV_IMAGES),
    `rsum ${m.map((r) => r.rsum).join(',')} although collapsed`,
  );
});
