// `vsl eval`, `vsl eval-overall` end to end on a tiny synthetic dataset with a small model, the worker pool
// (1 vs 2 workers, errors inside a worker), fold5 on small folds, and bad inputs through the real binary.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSynth } from '../../src/data/synth.js';
import { loadVocab, saveVocab, vocabFromWords } from '../../src/data/vocab.js';
import { readNpy } from '../../src/io/npyRead.js';
import { writeNpy } from '../../src/io/npyWrite.js';
import { setLogLevel } from '../../src/util/log.js';
import { selectBackend } from '../../src/ops/backend.js';
import { defaultModelConfig, type ModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { Weights } from '../../src/model/weights.js';
import { saveCheckpoint } from '../../src/io/checkpoint.js';
import { evaluateModel } from '../../src/eval/evaluate.js';
import { evaluate, evaluateFolds, foldBlock, foldSlices } from '../../src/eval/metrics.js';
import { encodeCaptionTokens, encodeImages } from '../../src/runtime/encode.js';
import { ScorePool, createScorer, shardRanges } from '../../src/runtime/scorePool.js';
import { runEval, type EvalJson } from '../../src/cli/eval.js';
import { runEvalOverall, type EvalOverallJson } from '../../src/cli/evalOverall.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { maxAbsDiff, rejectsWith } from '../helpers/asserts.js';

const BIN = path.join(REPO_ROOT, 'bin/vsl');
const NAME = 'syn_precomp';
const EVAL_IMAGES = 6; // test: 6 images / 30 captions; testall: 30 images = 5 folds of 6
let tmp = '';
let dataPath = '';
const ckpt: Record<'SGR' | 'SAF', string> = { SGR: '', SAF: '' };
let configs: Record<'SGR' | 'SAF', ModelConfig>;

function vsl(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, '--log-level', 'warn', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, CI: 'true' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The threads of this process (Linux): a worker thread counts from its start until it has ended. */
function osThreads(): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
}

function expectCliError(args: string[], parts: string[]): void {
  const r = vsl(args);
  assert.notEqual(r.status, 0, `expected a non-zero exit; stdout ${r.stdout}`);
  const line = r.stderr.split('\n').find((l) => l.startsWith('vsl: '));
  assert.ok(line, `no "vsl: ..." line in stderr: ${r.stderr}`);
  for (const p of parts) assert.ok(line.includes(p), `${JSON.stringify(line)} lacks ${JSON.stringify(p)}`);
  assert.equal(r.stdout, '');
}

before(async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-evalcli-'));
  dataPath = path.join(tmp, 'data');
  const syn = generateSynth({ out: dataPath, name: NAME, images: 4, evalImages: EVAL_IMAGES, imgDim: 64, seed: 21 });
  const small = { vocabSize: syn.vocab.size, imgDim: 64, wordDim: 16, embedSize: 32, simDim: 16 };
  configs = {
    SGR: defaultModelConfig({ module: 'SGR', ...small }),
    SAF: defaultModelConfig({ module: 'SAF', ...small }),
  };
  for (const m of ['SGR', 'SAF'] as const) {
    const reg = ParamRegistry.init(configs[m], m === 'SGR' ? 3 : 4);
    ckpt[m] = path.join(tmp, `${m}.h5`);
    await saveCheckpoint(ckpt[m], {
      weights: (await reg.toArrays()) as never,
      options: { model: configs[m], data: { dataName: NAME, dataPath, vocabPath: dataPath }, train: {} },
      epoch: 2,
      iteration: 10,
      bestRsum: 0,
    });
    reg.dispose();
  }
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('vsl eval --json: shape of the JSON, recalls within [0, 100]', async () => {
  const out = await runEval({ model: ckpt.SGR, split: 'test', json: true, workers: '1' });
  const j = JSON.parse(out) as EvalJson;
  assert.deepEqual(j.model, { path: ckpt.SGR, module: 'SGR', source: 'vsl-hdf5', epoch: 2 });
  assert.equal(j.data.dataName, NAME);
  assert.equal(j.data.split, 'test');
  assert.equal(j.nImages, EVAL_IMAGES);
  assert.equal(j.nCaptions, 5 * EVAL_IMAGES);
  assert.equal(j.fold5, false);
  assert.deepEqual(j.sims.shape, [EVAL_IMAGES, 5 * EVAL_IMAGES]);
  for (const d of ['i2t', 't2i'] as const) {
    assert.deepEqual(Object.keys(j.result[d]).sort(), ['meanr', 'medr', 'r1', 'r10', 'r5']);
    for (const k of ['r1', 'r5', 'r10'] as const)
      assert.ok(j.result[d][k] >= 0 && j.result[d][k] <= 100, `${d}.${k} = ${j.result[d][k]}`);
    assert.ok(j.result[d].medr >= 1 && j.result[d].meanr >= 1);
  }
  const sum =
    j.result.i2t.r1 + j.result.i2t.r5 + j.result.i2t.r10 + j.result.t2i.r1 + j.result.t2i.r5 + j.result.t2i.r10;
  assert.ok(Math.abs(j.result.rsum - sum) < 1e-9);
  // The table form has the labels.
  const text = await runEval({ model: ckpt.SGR, split: 'test', workers: '1' });
  assert.match(text, /R@1 +R@5 +R@10 +medr +meanr/);
  assert.match(text, /^test +\|/m);
});

test('vsl eval through the binary (2 workers, --save-sims) matches the in-process scores', async () => {
  const sims = path.join(tmp, 'cli_sims.npy');
  const r = vsl(['eval', '--model', ckpt.SAF, '--split', 'test', '--workers', '2', '--json', '--save-sims', sims]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as EvalJson;
  assert.equal(j.workers, 2);
  const saved = readNpy(sims);
  assert.deepEqual(saved.shape, [EVAL_IMAGES, 5 * EVAL_IMAGES]);
  const local = await evaluateModel({ modelPath: ckpt.SAF, split: 'test', fold5: false, workers: 1 });
  assert.ok(maxAbsDiff(saved.data, local.sims) <= 1e-6);
  assert.deepEqual(j.result.rsum, local.result.rsum);
});

test('1-worker and 2-worker score matrices are identical (SGR and SAF, uneven shards)', async () => {
  for (const m of ['SGR', 'SAF'] as const) {
    const one = await evaluateModel({ modelPath: ckpt[m], split: 'testall', fold5: false, workers: 1, imageBlock: 4 });
    const two = await evaluateModel({ modelPath: ckpt[m], split: 'testall', fold5: false, workers: 2, imageBlock: 4 });
    assert.equal(two.workers, 2);
    assert.ok(maxAbsDiff(one.sims, two.sims) <= 1e-6, m);
    assert.deepEqual(one.result, two.result);
  }
});

test("a split stored the reference's way (each image 5 times) gives the same scores", async () => {
  const dup = path.join(tmp, 'dup');
  fs.mkdirSync(path.join(dup, NAME), { recursive: true });
  const ims = readNpy(path.join(dataPath, NAME, 'test_ims.npy'));
  const [n, r, d] = ims.shape as [number, number, number];
  const rep = new Float32Array(5 * n * r * d);
  for (let i = 0; i < 5 * n; i++)
    rep.set(ims.data.subarray(Math.floor(i / 5) * r * d, (Math.floor(i / 5) + 1) * r * d), i * r * d);
  writeNpy(path.join(dup, NAME, 'test_ims.npy'), rep, [5 * n, r, d]);
  fs.copyFileSync(path.join(dataPath, NAME, 'test_caps.txt'), path.join(dup, NAME, 'test_caps.txt'));
  const a = await evaluateModel({ modelPath: ckpt.SAF, split: 'test', fold5: false, workers: 1 });
  const b = await evaluateModel({
    modelPath: ckpt.SAF,
    dataPath: dup,
    vocabPath: dataPath,
    split: 'test',
    fold5: false,
    workers: 1,
  });
  assert.deepEqual(b.simsShape, [n, 5 * n]);
  assert.deepEqual(Array.from(b.sims), Array.from(a.sims));
});

test('shardRanges: contiguous, aligned, covering', () => {
  assert.deepEqual(shardRanges(0, 100, 2, 10), [
    [0, 50],
    [50, 100],
  ]);
  assert.deepEqual(shardRanges(0, 25, 2, 10), [
    [0, 10],
    [10, 25],
  ]);
  assert.deepEqual(shardRanges(5, 8, 4, 10), [[5, 8]]);
  assert.deepEqual(shardRanges(0, 7, 3, 1), [
    [0, 2],
    [2, 4],
    [4, 7],
  ]);
  assert.deepEqual(shardRanges(3, 3, 2, 1), []);
});

test('fold5: 5 folds of k images score the diagonal blocks of the full matrix; mean of every metric', async () => {
  const full = await evaluateModel({ modelPath: ckpt.SGR, split: 'testall', fold5: false, workers: 1 });
  const nImg = 5 * EVAL_IMAGES;
  assert.deepEqual(full.simsShape, [nImg, 5 * nImg]);
  const f5 = await evaluateModel({
    modelPath: ckpt.SGR,
    split: 'testall',
    fold5: true,
    foldImages: EVAL_IMAGES,
    workers: 2,
  });
  assert.deepEqual(f5.simsShape, [5, EVAL_IMAGES, 5 * EVAL_IMAGES]);
  const blockLen = EVAL_IMAGES * 5 * EVAL_IMAGES;
  const slices = foldSlices(nImg, 5 * nImg);
  assert.equal(slices.length, 5);
  slices.forEach((s, f) => {
    const block = foldBlock(full.sims, nImg, 5 * nImg, s);
    assert.ok(maxAbsDiff(block, f5.sims.subarray(f * blockLen, (f + 1) * blockLen)) <= 1e-6, `fold ${f}`);
  });
  const ref = evaluateFolds(full.sims, nImg, 5 * nImg);
  assert.equal(f5.folds!.length, 5);
  for (const [a, b] of [[f5.result, ref.mean], ...f5.folds!.map((x, i) => [x, ref.folds[i]])] as const) {
    assert.ok(
      Math.abs(a.rsum - b.rsum) < 1e-9 &&
        Math.abs(a.i2t.medr - b.i2t.medr) < 1e-9 &&
        Math.abs(a.t2i.meanr - b.t2i.meanr) < 1e-9,
    );
  }
  // Through the CLI function: JSON with folds and mean.
  const j = JSON.parse(
    await runEval({
      model: ckpt.SGR,
      split: 'testall',
      fold5: true,
      foldImages: String(EVAL_IMAGES),
      json: true,
      workers: '1',
    }),
  ) as EvalJson;
  assert.equal(j.folds?.length, 5);
  assert.deepEqual(
    j.folds.map((f) => f.fold),
    [0, 1, 2, 3, 4],
  );
  assert.ok(Math.abs(j.result.rsum - ref.mean.rsum) < 1e-9);
  const text = await runEval({
    model: ckpt.SGR,
    split: 'testall',
    fold5: true,
    foldImages: String(EVAL_IMAGES),
    workers: '1',
  });
  assert.match(text, /^fold 4 +\|/m);
  assert.match(text, /^mean +\|/m);
  assert.match(text, /mean over 5 folds: rsum/);
  // Not enough images for 5 folds.
  await rejectsWith(
    evaluateModel({ modelPath: ckpt.SGR, split: 'test', fold5: true, foldImages: EVAL_IMAGES, workers: 1 }),
    ['--fold5', `has ${EVAL_IMAGES} images`],
  );
});

test('eval-overall: a model ensembled with itself equals the model; SGR+SAF = mean of the two matrices', async () => {
  const self = JSON.parse(
    await runEvalOverall({ sgr: ckpt.SGR, saf: ckpt.SGR, split: 'test', json: true, workers: '1' }),
  ) as EvalOverallJson;
  const single = await evaluateModel({ modelPath: ckpt.SGR, split: 'test', fold5: false, workers: 1 });
  assert.deepEqual(self.ensemble.result, JSON.parse(JSON.stringify(single.result)));
  assert.deepEqual(self.sims.shape, single.simsShape);

  const ens = path.join(tmp, 'ens.npy');
  const both = JSON.parse(
    await runEvalOverall({ sgr: ckpt.SGR, saf: ckpt.SAF, split: 'test', json: true, workers: '1', saveSims: ens }),
  ) as EvalOverallJson;
  const saf = await evaluateModel({ modelPath: ckpt.SAF, split: 'test', fold5: false, workers: 1 });
  const mean = Float64Array.from(single.sims, (v, i) => (v + saf.sims[i]) / 2);
  const expected = evaluate(mean, EVAL_IMAGES, 5 * EVAL_IMAGES);
  assert.deepEqual(both.ensemble.result, JSON.parse(JSON.stringify(expected)));
  assert.deepEqual(
    both.members.map((m) => m.label),
    ['SGR (SGR)', 'SAF (SAF)'],
  );
  assert.ok(maxAbsDiff(readNpy(ens).data, mean) <= 1e-6);

  // From saved score files (fold5 too).
  const a = path.join(tmp, 'a.npy');
  const b = path.join(tmp, 'b.npy');
  await runEval({
    model: ckpt.SGR,
    split: 'testall',
    fold5: true,
    foldImages: String(EVAL_IMAGES),
    saveSims: a,
    workers: '1',
  });
  await runEval({
    model: ckpt.SAF,
    split: 'testall',
    fold5: true,
    foldImages: String(EVAL_IMAGES),
    saveSims: b,
    workers: '1',
  });
  assert.deepEqual(readNpy(a).shape, [5, EVAL_IMAGES, 5 * EVAL_IMAGES]);
  const fromFiles = JSON.parse(
    await runEvalOverall({ sims: [a, b], dataPath, dataName: NAME, split: 'testall', fold5: true, json: true }),
  ) as EvalOverallJson;
  const fromModels = JSON.parse(
    await runEvalOverall({
      sgr: ckpt.SGR,
      saf: ckpt.SAF,
      split: 'testall',
      fold5: true,
      foldImages: String(EVAL_IMAGES),
      json: true,
      workers: '2',
    }),
  ) as EvalOverallJson;
  assert.deepEqual(fromFiles.ensemble, fromModels.ensemble);
  const selfFiles = JSON.parse(
    await runEvalOverall({ sims: [a, a], split: 'testall', fold5: true, json: true }),
  ) as EvalOverallJson;
  assert.deepEqual(selfFiles.ensemble, { result: selfFiles.members[0].result, folds: selfFiles.members[0].folds });
  const text = await runEvalOverall({ sims: [a, b], dataPath, dataName: NAME, split: 'testall', fold5: true });
  assert.match(text, /SGRAF \(mean\)/);

  // Shapes must agree; a matrix that does not fit the split is refused.
  const c = path.join(tmp, 'c.npy');
  writeNpy(c, new Float32Array(5 * 4 * 20), [5, 4, 20]);
  await rejectsWith(runEvalOverall({ sims: [a, c], split: 'testall', fold5: true }), [
    'same shape',
    `(5, ${EVAL_IMAGES}, ${5 * EVAL_IMAGES})`,
    '(5, 4, 20)',
  ]);
  await rejectsWith(runEvalOverall({ sims: [a, b], split: 'testall', fold5: false }), ['add --fold5']);
  const d = path.join(tmp, 'd.npy');
  writeNpy(d, new Float32Array(4 * 20), [4, 20]);
  await rejectsWith(runEvalOverall({ sims: [d, d], dataPath, dataName: NAME, split: 'test' }), [
    'do not fit',
    `expected (${EVAL_IMAGES}, ${5 * EVAL_IMAGES})`,
  ]);
  await rejectsWith(runEvalOverall({ sims: [a], split: 'testall', fold5: true }), ['at least two']);
});

test('an error inside a score worker surfaces in the main thread and the pool shuts down', async () => {
  const c = configs.SGR;
  const reg = ParamRegistry.init(c, 9);
  const w = Weights.of(reg);
  const img = encodeImages(w, c, 2, () => new Float32Array(2 * 36 * 64).fill(0.1));
  const vocab = loadVocab(path.join(dataPath, `${NAME}_vocab.json`));
  const cap = encodeCaptionTokens(w, c, [
    Int32Array.of(vocab.start, 5, vocab.end),
    Int32Array.of(vocab.start, vocab.end),
  ]);
  w.dispose();
  const weights = await reg.toArrays();
  weights.delete('sim_enc.sim_eval_w.bias');
  const threads = osThreads();
  await rejectsWith(ScorePool.start({ workers: 2, backend: 'wasm', config: c, weights, img, cap }), [
    'score worker',
    'missing keys: sim_enc.sim_eval_w.bias',
  ]);
  await rejectsWith(
    ScorePool.start({ workers: 1, backend: 'no-such-backend', config: c, weights: await reg.toArrays(), img, cap }),
    ['score worker 0', '--backend'],
  );
  assert.equal(osThreads(), threads, 'the failed pools ended their worker threads');
  // A healthy pool: scores equal the in-process ones, and close() ends the workers.
  const pool = await createScorer({ workers: 2, backend: 'wasm', reg, config: c, img, cap, imageBlock: 1 });
  const inproc = await createScorer({ workers: 1, backend: 'wasm', reg, config: c, img, cap, imageBlock: 1 });
  assert.equal(osThreads(), threads + 2, 'two score worker threads, none for the in-process scorer');
  const p = await pool.score([0, 2], [0, 2]);
  const q = await inproc.score([0, 2], [0, 2]);
  assert.deepEqual(Array.from(p), Array.from(q));
  await pool.close();
  await inproc.close();
  assert.equal(osThreads(), threads, 'close() ended the worker threads');
  await rejectsWith(pool.score([0, 2], [0, 2]), ['pool is closed']);
  reg.dispose();
});

test('bad inputs: clear "vsl: ..." messages and a non-zero exit', async () => {
  // missing model file
  expectCliError(
    ['eval', '--model', path.join(tmp, 'nope.h5'), '--split', 'test'],
    ['nope.h5', 'model file not found'],
  );
  // missing split files
  expectCliError(['eval', '--model', ckpt.SGR, '--split', 'val2099'], ['val2099_ims.npy', 'file not found']);
  // a vocabulary lacking <unk>
  const badVocabDir = path.join(tmp, 'badvocab');
  fs.mkdirSync(badVocabDir);
  const good = loadVocab(path.join(dataPath, `${NAME}_vocab.json`));
  const json = {
    word2idx: Object.fromEntries(good.idx2word.map((w, i): [string, number] => [w, i]).filter(([w]) => w !== '<unk>')),
  };
  fs.writeFileSync(path.join(badVocabDir, `${NAME}_vocab.json`), JSON.stringify(json));
  expectCliError(['eval', '--model', ckpt.SGR, '--vocab-path', badVocabDir], ['<unk>']);
  // keys that do not fit the module
  const sgrAsSaf = path.join(tmp, 'sgr_as_saf.h5');
  const reg = ParamRegistry.init(configs.SGR, 1);
  await saveCheckpoint(sgrAsSaf, {
    weights: (await reg.toArrays()) as never,
    options: { model: { ...configs.SGR, module: 'SAF' }, data: { dataName: NAME, dataPath } },
    epoch: 0,
    iteration: 0,
    bestRsum: 0,
  });
  reg.dispose();
  expectCliError(
    ['eval', '--model', sgrAsSaf],
    ['missing keys: sim_enc.SAF_module', 'unexpected keys: sim_enc.SGR_module.0'],
  );
  // features whose dim differs from the model's img_dim
  const other = path.join(tmp, 'other');
  generateSynth({ out: other, name: NAME, images: 2, evalImages: 2, imgDim: 32, seed: 2 });
  expectCliError(
    ['eval', '--model', ckpt.SGR, '--data-path', other, '--vocab-path', dataPath],
    ['feature dim (img_dim)', 'expected 64', 'found 32', 'img_dim 64'],
  );
  // a vocabulary of another size than the embedding
  saveVocab(path.join(tmp, 'v5', `${NAME}_vocab.json`), vocabFromWords(['<pad>', '<start>', '<end>', '<unk>', 'dog']));
  expectCliError(['eval', '--model', ckpt.SGR, '--vocab-path', path.join(tmp, 'v5')], ['5 words', 'rows']);
  // bad option values
  expectCliError(['eval', '--model', ckpt.SGR, '--workers', '0'], ['--workers', 'expected an integer >= 1']);
  expectCliError(['eval', '--model', ckpt.SGR, '--save-sims', path.join(tmp, 'x.txt')], ['--save-sims', '.npy']);
  // eval-overall mixing modes; convert of a missing file
  expectCliError(
    ['eval-overall', '--sgr', ckpt.SGR, '--sims', 'a.npy', '--sims', 'b.npy'],
    ['either --sgr and --saf, or --sims'],
  );
  expectCliError(
    ['convert', path.join(tmp, 'none.pth.tar'), '-o', path.join(tmp, 'x.h5')],
    ['none.pth.tar', 'not found'],
  );
});
