// The code path of the native backends, exercised where they cannot be installed: `--backend cpu --workers 1`
// runs tfjs' own kernels on one thread with no wasm heap (no worker thread, none of vsl's wasm kernel patches or
// heap guard), as tensorflow / tensorflow-gpu do. A short training run there and on wasm (two threads) gives the
// same losses, grad norms and dev rsum, and the evaluations of what they trained give the same scores, within
// the float tolerances of the golden steps (test/fixtures/golden/README.md: losses 1e-4 / VSL and grad norm 1e-3
// relative, scores after five steps 1e-4 absolute).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readNpy } from '../../src/io/npyRead.js';
import {
  makeData,
  readMetrics,
  readSteps,
  REF_FIXTURES,
  REF_MODEL,
  rmrf,
  runVsl,
  tempDir,
  trainRun,
} from './trainHelpers.js';

let tmp = '';
let dataPath = '';

before(() => {
  tmp = tempDir('backends');
  dataPath = makeData(tmp, 8, 10);
});
after(() => rmrf(tmp));

const BACKENDS: Record<string, string[]> = {
  cpu: ['--backend', 'cpu', '--workers', '1'],
  wasm: ['--backend', 'wasm', '--workers', '2'],
};

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

test('cpu on one thread and wasm on two: the same training run and the same scores', async () => {
  const t0 = performance.now();
  const train = (name: string) =>
    runVsl([
      ...trainRun(dataPath, path.join(tmp, name)),
      ...REF_MODEL,
      '--init-from',
      path.join(REF_FIXTURES, 'sgr_init.pth.tar'),
      '--batch-size',
      '10',
      '--num-epochs',
      '2',
      // the reference's learning rate, as the golden steps: the soft rank's 1/τ = 1000 makes the gradient a steep
      // function of the scores, and 10x larger steps carry float32 differences past 1e-3 within a few steps
      '--learning-rate',
      '0.0002',
      '--log-step',
      '1',
      ...BACKENDS[name], // dropout 0.4: the masks come from the seed, on either backend
    ]);
  const runs = await Promise.all([train('cpu'), train('wasm')]);
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const [a, b] = ['cpu', 'wasm'].map((n) => readSteps(path.join(tmp, n, 'train.log')));
  assert.equal(a.length, 8);
  assert.deepEqual(
    b.map((s) => [s.epoch, s.iteration, s.lr]),
    a.map((s) => [s.epoch, s.iteration, s.lr]),
  );
  a.forEach((s, i) => {
    const w = b[i];
    assert.ok(rel(w.hinge, s.hinge) <= 1e-4, `iteration ${s.iteration} hinge: wasm ${w.hinge}, cpu ${s.hinge}`);
    assert.ok(
      rel(w.semantic, s.semantic) <= 1e-3,
      `iteration ${s.iteration} VSL: wasm ${w.semantic}, cpu ${s.semantic}`,
    );
    assert.ok(
      rel(w.gradNorm, s.gradNorm) <= 1e-3,
      `iteration ${s.iteration} norm: wasm ${w.gradNorm}, cpu ${s.gradNorm}`,
    );
  });
  assert.deepEqual(
    readMetrics(path.join(tmp, 'wasm', 'metrics.jsonl')).map((m) => m.rsum),
    readMetrics(path.join(tmp, 'cpu', 'metrics.jsonl')).map((m) => m.rsum),
  );

  // each run's model evaluated on its own backend, and the cpu run's model on wasm too
  const evaluate = (model: string, backend: string, out: string) =>
    runVsl([
      'eval',
      '--model',
      path.join(tmp, model, 'checkpoint_last.h5'),
      '--data-path',
      dataPath,
      '--split',
      'test',
      '--save-sims',
      path.join(tmp, out),
      '--json',
      ...BACKENDS[backend],
    ]);
  const evals = await Promise.all([
    evaluate('cpu', 'cpu', 'cpu.npy'),
    evaluate('wasm', 'wasm', 'wasm.npy'),
    evaluate('cpu', 'wasm', 'cpu_on_wasm.npy'),
  ]);
  for (const r of evals) assert.equal(r.code, 0, r.stderr);
  const rsum = evals.map((r) => (JSON.parse(r.stdout) as { result: { rsum: number } }).result.rsum);
  assert.equal(rsum[1], rsum[0]);
  assert.equal(rsum[2], rsum[0]);
  const sims = ['cpu', 'wasm', 'cpu_on_wasm'].map((n) => readNpy(path.join(tmp, `${n}.npy`)));
  const maxDiff = (x: (typeof sims)[number], y: (typeof sims)[number]) => {
    assert.deepEqual(x.shape, y.shape);
    let m = 0;
    for (let i = 0; i < x.data.length; i++) m = Math.max(m, Math.abs(Number(x.data[i]) - Number(y.data[i])));
    return m;
  };
  const trained = maxDiff(sims[1], sims[0]);
  const sameModel = maxDiff(sims[2], sims[0]);
  assert.ok(trained <= 1e-4, `scores of the two trained models differ by ${trained}`);
  assert.ok(sameModel <= 1e-5, `one model's scores on cpu and wasm differ by ${sameModel}`);
  process.stderr.write(
    `# backends: scores differ by ${trained.toExponential(1)} (trained apart), ${sameModel.toExponential(1)} (one model); ${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
  );
});
