// `--engine onnx` against `--engine tfjs` through the real binary on a small synthetic split (metrics equal,
// --save-sims within 1e-5, SGR and SAF), on a checkpoint of the reference's own code (.pth.tar), shards on onnx
// merging bit for bit, parts of both engines merging with a warning, a resumed run with the other engine refused,
// `vsl export --format onnx` loading back, errors on one line, and the default engine with its fallback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readNpy } from '../../src/io/npyRead.js';
import { loadVocab, encodeCaption } from '../../src/data/vocab.js';
import { openSplit } from '../../src/data/precomp.js';
import { resolveEngine } from '../../src/runtime/engine.js';
import { OnnxModel } from '../../src/runtime/onnx/runner.js';
import { imageRows, scoreSplit } from '../../src/eval/scoreSplit.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/io/checkpoint.js';
import { setLogLevel } from '../../src/util/log.js';
import type { EvalJson } from '../../src/cli/eval.js';
import {
  DATA_NAME,
  errorLine,
  makeCheckpoint,
  makeEvalData,
  vslSync,
  type EvalFixture,
} from '../helpers/evalFixture.js';
import { FIXTURES } from '../helpers/paths.js';
import { maxAbsDiff } from '../helpers/asserts.js';
import { makeData } from '../train/trainHelpers.js';

const TOL = 1e-5;
let f: EvalFixture;
const ckpt = { SGR: '', SAF: '' };

before(async () => {
  setLogLevel('warn');
  f = makeEvalData('onnx-engine', 12); // test: 12 images x 60 captions
  ckpt.SGR = await makeCheckpoint(f, 'sgr', { module: 'SGR', seed: 7 });
  ckpt.SAF = await makeCheckpoint(f, 'saf', { module: 'SAF', seed: 8 });
});
after(() => fs.rmSync(f.dir, { recursive: true, force: true }));

const sims = (file: string) => readNpy(file).data;

function evalJson(args: string[], env?: Record<string, string>): { json: EvalJson; stderr: string } {
  const r = vslSync(f.dir, ['eval', '--json', ...args], 'info', env);
  assert.equal(r.status, 0, r.stderr);
  return { json: JSON.parse(r.stdout) as EvalJson, stderr: r.stderr };
}

for (const module of ['SGR', 'SAF'] as const) {
  test(`vsl eval --engine onnx gives the metrics of --engine tfjs, scores within 1e-5 (${module})`, () => {
    const out = (e: string) => path.join(f.dir, `${module}-${e}.npy`);
    const [onnx, tfjs] = (['onnx', 'tfjs'] as const).map(
      (e) => evalJson(['--model', ckpt[module], '--engine', e, '--save-sims', out(e)]).json,
    );
    assert.equal(onnx.engine, 'onnx');
    assert.equal(tfjs.engine, 'tfjs');
    assert.deepEqual(onnx.result, tfjs.result);
    const d = maxAbsDiff(sims(out('onnx')), sims(out('tfjs')));
    assert.ok(d <= TOL, `max |onnx - tfjs| = ${d}`);
  });
}

test('a checkpoint of the reference code (.pth.tar) scores the same on onnx and tfjs', () => {
  const dataPath = makeData(path.join(f.dir, 'ref'), 8, 10); // the data the reference fixtures were made on
  const model = path.join(FIXTURES, 'reference', 'sgr_checkpoint_1.pth.tar');
  const args = (e: string) => ['--model', model, '--data-path', dataPath, '--data-name', DATA_NAME, '--engine', e];
  const out = (e: string) => path.join(f.dir, `ref-${e}.npy`);
  const [onnx, tfjs] = ['onnx', 'tfjs'].map((e) => evalJson([...args(e), '--save-sims', out(e)]).json);
  assert.deepEqual(onnx.result, tfjs.result);
  const d = maxAbsDiff(sims(out('onnx')), sims(out('tfjs')));
  assert.ok(d <= TOL, `max |onnx - tfjs| = ${d}`);
});

test('shards scored on onnx merge to the unsharded onnx matrix bit for bit; onnx + tfjs parts merge, named and warned', () => {
  const p = (n: string) => path.join(f.dir, n);
  const common = ['--model', ckpt.SAF];
  evalJson([...common, '--engine', 'onnx', '--save-sims', p('whole.npy')]);
  evalJson([...common, '--engine', 'onnx', '--shard', '0/2', '--out', p('a.npy')]);
  evalJson([...common, '--engine', 'onnx', '--shard', '1/2', '--out', p('b.npy')]);
  evalJson([...common, '--engine', 'tfjs', '--shard', '1/2', '--out', p('t.npy')]);
  assert.equal((JSON.parse(fs.readFileSync(p('a.json'), 'utf8')) as { engine: string }).engine, 'onnx');
  const merged = evalJson(['--merge', p('a.npy'), p('b.npy'), '--save-sims', p('merged.npy')]).json;
  assert.equal(merged.engine, 'onnx');
  assert.deepEqual(fs.readFileSync(p('merged.npy')), fs.readFileSync(p('whole.npy')));
  const mixed = evalJson(['--merge', p('a.npy'), p('t.npy')]);
  assert.equal(mixed.json.engine, 'onnx+tfjs');
  assert.match(mixed.stderr, /engine tfjs differs from .*a\.json's onnx/);
});

test('a work directory of one engine is refused by a run on the other (the scores differ by float rounding)', async () => {
  const workDir = path.join(f.dir, 'resume.work');
  const base = { modelPath: ckpt.SGR, split: 'test', fold5: false, workDir };
  const first = await scoreSplit({ ...base, engine: 'tfjs', shouldStop: () => true });
  assert.equal(first.stopped, true);
  await assert.rejects(scoreSplit({ ...base, engine: 'onnx' }), (e: Error) => {
    assert.match(e.message, /engine: expected "onnx" \(this evaluation\), found "tfjs"/);
    assert.match(e.message, /continue it with --engine tfjs/);
    return true;
  });
});

test('a work directory written before the engine field counts as tfjs', async () => {
  const workDir = path.join(f.dir, 'old.work');
  const base = { modelPath: ckpt.SGR, split: 'test', fold5: false, workDir };
  await scoreSplit({ ...base, engine: 'tfjs', shouldStop: () => true });
  const file = path.join(workDir, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { identity: Record<string, unknown> };
  delete m.identity.engine;
  fs.writeFileSync(file, JSON.stringify(m));
  const s = await scoreSplit({ ...base, engine: 'tfjs' });
  assert.equal(s.stopped, false);
  await assert.rejects(
    scoreSplit({ ...base, engine: 'onnx' }),
    /engine: expected "onnx" \(this evaluation\), found "tfjs"/,
  );
});

test('vsl export --format onnx writes graphs that load back (OnnxModel.fromDir) and score as tfjs', async () => {
  const dir = path.join(f.dir, 'exported');
  const r = vslSync(f.dir, ['export', '--format', 'onnx', ckpt.SGR, '-o', dir]);
  assert.equal(r.status, 0, r.stderr);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as {
    opset: number;
    vocab: { file: string };
    graphs: { score: { inputs: { name: string; shape: (string | number)[] }[] } };
  };
  assert.equal(manifest.opset, 17);
  assert.deepEqual(manifest.graphs.score.inputs[2], { name: 'words', dtype: 'float32', shape: ['nCap', 'Lp', 32] });
  const m = await OnnxModel.fromDir(dir);
  const split = openSplit(f.dataPath, DATA_NAME, 'test', { imgDim: 64 });
  try {
    const vocab = loadVocab(path.join(dir, manifest.vocab.file));
    const img = await m.encodeImages(split.nCaptions / 5, imageRows(split));
    const cap = await m.encodeCaptionTokens(split.captions.map((c) => encodeCaption(vocab, c)));
    const got = await m.scoreMatrix(img, cap);
    const want = path.join(f.dir, 'SGR-tfjs.npy');
    if (!fs.existsSync(want)) evalJson(['--model', ckpt.SGR, '--engine', 'tfjs', '--save-sims', want]);
    const d = maxAbsDiff(got, sims(want));
    assert.ok(d <= TOL, `max |exported onnx - tfjs| = ${d}`);
  } finally {
    split.close();
    await m.release();
  }
  // a second export to the same folder replaces it whole
  assert.equal(vslSync(f.dir, ['export', '--format', 'onnx', ckpt.SAF, '-o', dir]).status, 0);
  assert.match(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'), /"module": "SAF"/);
  // a corrupt graph file: one line naming the file and ORT's reason
  fs.writeFileSync(path.join(dir, 'score.onnx'), 'not a graph');
  await assert.rejects(OnnxModel.fromDir(dir), (e: Error) => {
    assert.match(e.message, /score\.onnx: ONNX Runtime cannot load it: \S/);
    assert.equal(e.message.includes('\n'), false);
    return true;
  });
});

test('a checkpoint that cannot be exported names the parameter', async () => {
  const bad = path.join(f.dir, 'nan.h5');
  const ck = await loadCheckpoint(ckpt.SGR);
  const name = [...ck.weights.keys()].find((k) => k.includes('fc'))!;
  const a = ck.weights.get(name)!;
  const data = Float32Array.from(a.data as Float32Array);
  data[3] = NaN;
  ck.weights.set(name, { ...a, data });
  await saveCheckpoint(bad, ck);
  const r = vslSync(f.dir, ['export', '--format', 'onnx', bad, '-o', path.join(f.dir, 'nan-out')]);
  assert.notEqual(r.status, 0);
  const line = errorLine(r.stderr);
  assert.ok(line?.includes(name), `${line} should name ${name}`);
  assert.equal(fs.existsSync(path.join(f.dir, 'nan-out')), false);
});

test('default engine: onnx where it loads; else tfjs with the reason; --engine onnx then fails on one line', async () => {
  const args = ['--model', ckpt.SGR, '--work-dir', path.join(f.dir, 'default.work')];
  const auto = evalJson(args);
  assert.equal(auto.json.engine, 'onnx');
  assert.match(auto.stderr, /engine: onnx \(onnxruntime-node [\d.]+, \d threads?\)/);
  const off = evalJson(args, { VSL_NO_ONNX: '1' });
  assert.equal(off.json.engine, 'tfjs');
  assert.match(off.stderr, /engine: tfjs \(wasm, \d threads?\); onnx not used: VSL_NO_ONNX is set/);
  const r = vslSync(f.dir, ['eval', ...args, '--engine', 'onnx'], 'warn', { VSL_NO_ONNX: '1' });
  assert.notEqual(r.status, 0);
  assert.equal(errorLine(r.stderr), 'vsl: --engine onnx: VSL_NO_ONNX is set; use --engine tfjs');
  // a module without an ONNX graph
  assert.deepEqual(await resolveEngine('auto', 'NoSuchModule'), {
    name: 'tfjs',
    fallback: 'no ONNX graph for similarity module NoSuchModule',
  });
  await assert.rejects(resolveEngine('onnx', 'NoSuchModule'), /--engine onnx: no ONNX graph for similarity module/);
});

test('vsl eval-overall and vsl query on --engine onnx agree with --engine tfjs', () => {
  const overall = (e: string) => {
    const r = vslSync(f.dir, ['eval-overall', '--sgr', ckpt.SGR, '--saf', ckpt.SAF, '--engine', e, '--json']);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { engine: string; ensemble: unknown };
  };
  const [o, t] = [overall('onnx'), overall('tfjs')];
  assert.equal(o.engine, 'onnx');
  assert.deepEqual(o.ensemble, t.ensemble);
  type Hits = { sentences: { hits: { image: number; score: number }[] }[] };
  const query = (e: string) => {
    const r = vslSync(f.dir, ['query', '--model', ckpt.SAF, '--engine', e, '--json', '--top', '5', 'a red car']);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as Hits).sentences[0].hits;
  };
  const [qo, qt] = [query('onnx'), query('tfjs')];
  assert.deepEqual(
    qo.map((h) => h.image),
    qt.map((h) => h.image),
  );
  qo.forEach((h, k) => assert.ok(Math.abs(h.score - qt[k].score) <= TOL, `${h.score} vs ${qt[k].score}`));
});
