// Loading models for evaluation: the torch fixtures (zip and legacy containers) score exactly as the same
// weights read from their HDF5 copy, `vsl convert` round-trips, and a vocabulary / key mismatch is a clear error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSynth } from '../../src/data/synth.js';
import { saveVocab, vocabFromWords } from '../../src/data/vocab.js';
import { setLogLevel } from '../../src/util/log.js';
import { selectBackend } from '../../src/ops/backend.js';
import { detectModelFormat, loadModel, readModelFile } from '../../src/eval/loadModel.js';
import { evaluateModel } from '../../src/eval/evaluate.js';
import { runConvert } from '../../src/cli/convert.js';
import { loadCheckpoint, saveCheckpoint, type ArrayRecord } from '../../src/io/checkpoint.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { maxAbsDiff, rejectsWith } from '../helpers/asserts.js';

const FIX = path.join(REPO_ROOT, 'test/fixtures/torch');
let tmp = '';
let dataPath = '';
let vocabDir = '';

before(async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-evalload-'));
  dataPath = path.join(tmp, 'data');
  // The fixtures: img_dim 8, vocab 10, data_name f30k_precomp.
  generateSynth({ out: dataPath, name: 'f30k_precomp', images: 2, evalImages: 4, imgDim: 8, seed: 11 });
  vocabDir = path.join(tmp, 'vocab10');
  saveVocab(
    path.join(vocabDir, 'f30k_precomp_vocab.json'),
    vocabFromWords(['<pad>', '<start>', '<end>', '<unk>', 'dog', 'cat', 'a', 'the', 'with', 'on']),
  );
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const evalOpts = (modelPath: string) => ({
  modelPath,
  dataPath,
  vocabPath: vocabDir,
  split: 'test',
  fold5: false,
  workers: 1,
});

test('detectModelFormat tells the containers apart by content', () => {
  assert.equal(detectModelFormat(path.join(FIX, 'sgr.zip.pth.tar')), 'zip');
  assert.equal(detectModelFormat(path.join(FIX, 'sgr.legacy.pth.tar')), 'legacy');
  assert.equal(detectModelFormat(path.join(FIX, 'sgr.h5')), 'hdf5');
  const junk = path.join(tmp, 'junk.pth.tar');
  fs.writeFileSync(junk, 'hello world');
  assert.throws(() => detectModelFormat(junk), /file header: expected a model checkpoint/);
  assert.throws(() => detectModelFormat(path.join(tmp, 'none.h5')), /model file not found/);
});

for (const m of ['sgr', 'saf']) {
  test(`${m}: torch zip, torch legacy and the HDF5 copy give the same scores`, async () => {
    const ref = await evaluateModel(evalOpts(path.join(FIX, `${m}.h5`)));
    assert.equal(ref.source, 'hdf5-weights');
    assert.equal(ref.module, m.toUpperCase());
    assert.equal(ref.epoch, m === 'sgr' ? 17 : 23);
    assert.deepEqual(ref.simsShape, [4, 20]);
    for (const c of ['zip', 'legacy']) {
      const r = await evaluateModel(evalOpts(path.join(FIX, `${m}.${c}.pth.tar`)));
      assert.equal(r.source, `torch-${c}`);
      assert.ok(maxAbsDiff(r.sims, ref.sims) <= 1e-6, `${m}.${c}: scores differ`);
      assert.deepEqual(r.result, ref.result);
    }
  });

  test(`${m}: vsl convert round-trip gives identical weights and scores`, async () => {
    const src = path.join(FIX, `${m}.zip.pth.tar`);
    const out = path.join(tmp, `${m}.converted.h5`);
    const text = await runConvert(src, { output: out });
    assert.match(text, new RegExp(`${m.toUpperCase()}.*-> `));
    const ck = await loadCheckpoint(out);
    const opts = ck.options as { model: { module: string; vocabSize: number }; data: { dataName: string } };
    assert.equal(opts.model.module, m.toUpperCase());
    assert.equal(opts.model.vocabSize, 10);
    assert.equal(opts.data.dataName, 'f30k_precomp');
    assert.equal(ck.epoch, m === 'sgr' ? 17 : 23);
    assert.equal(ck.iteration, m === 'sgr' ? 123456 : 654321);
    const a = await readModelFile(src);
    const b = await readModelFile(out);
    assert.equal(b.source, 'vsl-hdf5');
    assert.ok(a.arrays.size > 0, 'no arrays');
    assert.deepEqual([...b.arrays.keys()].sort(), [...a.arrays.keys()].sort());
    for (const [k, v] of a.arrays) {
      assert.deepEqual(b.arrays.get(k)!.shape, v.shape, k);
      assert.deepEqual(Array.from(b.arrays.get(k)!.data, Number), Array.from(v.data, Number), k);
    }
    const r1 = await evaluateModel(evalOpts(src));
    const r2 = await evaluateModel(evalOpts(out));
    assert.deepEqual(Array.from(r2.sims), Array.from(r1.sims));
  });
}

test('a vocabulary whose size differs from the embedding rows is a clear error', async () => {
  // The synthetic vocabulary (in the data path) has far more than 10 words.
  await rejectsWith(evaluateModel({ ...evalOpts(path.join(FIX, 'sgr.zip.pth.tar')), vocabPath: dataPath }), [
    'words',
    'has 10 rows',
    'txt_enc.embed.weight',
  ]);
  await rejectsWith(loadModel(path.join(FIX, 'saf.legacy.pth.tar'), { vocabSize: 11 }), ['11 words', '10 rows']);
  const ok = await loadModel(path.join(FIX, 'saf.legacy.pth.tar'), { vocabSize: 10 });
  assert.equal(ok.config.module, 'SAF');
  assert.equal(ok.config.vocabSize, 10);
  ok.reg.dispose();
});

test('weights that do not fit the module list the missing and unexpected keys', async () => {
  const sgr = await readModelFile(path.join(FIX, 'sgr.h5'));
  const bad = path.join(tmp, 'sgr_as_saf.h5');
  await saveCheckpoint(bad, {
    weights: sgr.arrays as Map<string, ArrayRecord>,
    options: { model: { ...sgr.config, module: 'SAF' }, data: { dataName: 'f30k_precomp', dataPath } },
    epoch: 0,
    iteration: 0,
    bestRsum: 0,
  });
  await rejectsWith(loadModel(bad), [
    'do not fit a SAF model',
    'missing keys: sim_enc.SAF_module.attn_sim_w.weight',
    'unexpected keys: sim_enc.SGR_module.0',
  ]);
  await rejectsWith(evaluateModel(evalOpts(bad)), ['missing keys', 'unexpected keys']);
});
