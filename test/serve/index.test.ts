// `vsl index` and `vsl query --index` on the eval fixture: the index gives the answers of encoding again (both
// directions), an index of another checkpoint, split or dims is refused naming manifest.json and the field, and
// a build that fails or is stopped leaves nothing (no index, no temporary folder); an older index is replaced,
// a folder that is not an index never is.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readCaptions } from '../../src/data/captions.js';
import { readNpyHeader } from '../../src/io/npyRead.js';
import { selectBackend } from '../../src/ops/backend.js';
import { setLogLevel } from '../../src/util/log.js';
import { buildIndex } from '../../src/query/buildIndex.js';
import { rejectsWith } from '../helpers/asserts.js';
import {
  DATA_NAME,
  errorLine,
  makeCheckpoint,
  makeEvalData,
  vslSync,
  type EvalFixture,
} from '../helpers/evalFixture.js';

let f: EvalFixture;
let modelA = '';
let modelB = '';
let idx = '';

interface QueryJson {
  index: string | null;
  sentences?: { hits: { image: number; score: number }[]; groundTruth: { image: number; rank: number } | null }[];
  image?: { hits: { caption: number; score: number }[]; firstGroundTruthRank: number };
}

function queryJson(args: string[]): QueryJson {
  const r = vslSync(f.dir, ['query', '--json', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as QueryJson;
}

/** Files of `dir` that a failed write could have left: temporary names. */
const leftovers = (dir: string) => fs.readdirSync(dir).filter((n) => n.includes('.tmp-'));

before(async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
  f = makeEvalData('serve-index', 12);
  modelA = await makeCheckpoint(f, 'a', { module: 'SGR', seed: 1 });
  modelB = await makeCheckpoint(f, 'b', { module: 'SGR', seed: 2 });
  idx = path.join(f.dir, 'idx');
  const r = vslSync(f.dir, ['index', '--model', modelA, '--split', 'test', '--out', idx]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /index of 12 images of syn_precomp\/test \(SGR, embed 32\) written to /);
});
after(() => fs.rmSync(f.dir, { recursive: true, force: true }));

test('the index folder: float32 regions and global vectors, a manifest of what it was built from', () => {
  assert.deepEqual(fs.readdirSync(idx).sort(), ['manifest.json', 'regions.npy', 'vglobal.npy']);
  const m = JSON.parse(fs.readFileSync(path.join(idx, 'manifest.json'), 'utf8')) as Record<string, never>;
  assert.equal(m.format, 'vsl-image-index');
  assert.equal(m.version, 1);
  assert.match(m.model['sha256'], /^[0-9a-f]{64}$/);
  assert.deepEqual(
    [m.data['dataName'], m.data['split'], m.data['nImages'], m.data['nCaptions']],
    [DATA_NAME, 'test', 12, 60],
  );
  assert.equal(m.model['config']['embedSize'], 32);
  assert.deepEqual(readNpyHeader(path.join(idx, 'regions.npy')).shape, [12, 36, 32]);
  assert.deepEqual(readNpyHeader(path.join(idx, 'vglobal.npy')).shape, [12, 32]);
  assert.equal(readNpyHeader(path.join(idx, 'regions.npy')).dtype, '<f4');
  assert.deepEqual(leftovers(f.dir), []);
});

test('vsl query --index gives what vsl query gives: sentences (one a split caption) and --image', () => {
  const caption = readCaptions(path.join(f.dataPath, DATA_NAME, 'test_caps.txt'))[17];
  const args = ['--model', modelA, '--split', 'test', '--top', '12'];
  const plain = queryJson([...args, 'a dog next to a red car', caption]);
  const indexed = queryJson([...args, '--index', idx, 'a dog next to a red car', caption]);
  assert.equal(plain.index, null);
  assert.equal(indexed.index, idx);
  assert.deepEqual(indexed.sentences, plain.sentences);
  assert.equal(plain.sentences![0].groundTruth, null);
  assert.equal(plain.sentences![1].groundTruth!.image, 3); // caption 17 belongs to image 3
  const img = ['--model', modelA, '--split', 'test', '--top', '60', '--image', '5'];
  assert.deepEqual(queryJson([...img, '--index', idx]).image, queryJson(img).image);
  // the index alone names its checkpoint and split
  assert.deepEqual(queryJson(['--index', idx, '--top', '12', caption]).sentences![0], indexed.sentences![1]);
});

test('an index of another checkpoint, split or dims is refused: one line naming manifest.json and the field', () => {
  const manifest = path.join(idx, 'manifest.json');
  const refused = (args: string[], parts: string[]) => {
    const r = vslSync(f.dir, ['query', '--index', idx, ...args, 'a dog']);
    assert.notEqual(r.status, 0);
    const line = errorLine(r.stderr) ?? '';
    for (const p of parts) assert.ok(line.includes(p), `${line} lacks ${p}`);
    assert.equal(r.stdout, '');
  };
  refused(['--model', modelB], [`${manifest}: model.sha256: expected `, `(the checkpoint ${modelB})`, 'built from']);
  refused(['--model', modelA, '--split', 'testall'], [`${manifest}: data.split: expected "testall", found "test"`]);
  refused(['--model', modelA, '--split', 'dev'], [`${manifest}: data.split: expected "dev"`]);
  const copy = path.join(f.dir, 'idx-edited');
  fs.cpSync(idx, copy, { recursive: true });
  const m = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8')) as {
    model: { config: { embedSize: number } };
  };
  m.model.config.embedSize = 64;
  fs.writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify(m));
  const r = vslSync(f.dir, ['query', '--index', copy, 'a dog']);
  assert.equal(errorLine(r.stderr), `vsl: ${copy}/manifest.json: model.config.embedSize: expected 32, found 64`);
  fs.writeFileSync(path.join(copy, 'manifest.json'), '{"format": "vsl-image-index"');
  assert.match(errorLine(vslSync(f.dir, ['query', '--index', copy, 'a dog']).stderr)!, /manifest\.json: manifest: /);
  const none = vslSync(f.dir, ['query', '--index', path.join(f.dir, 'nope'), 'a dog']);
  assert.equal(errorLine(none.stderr), `vsl: ${path.join(f.dir, 'nope')}: index not found (build one with vsl index)`);
});

test('writing: all or nothing; an older index is replaced, another folder never', async () => {
  const other = path.join(f.dir, 'mine');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'keep me');
  const o = { modelPath: modelA, split: 'test', out: other };
  await rejectsWith(buildIndex(o), [`${other}: --out: expected a new folder, an empty one or an older vsl index`]);
  assert.deepEqual(fs.readdirSync(other), ['notes.txt']);
  // stopped between batches, and a split that does not exist: nothing at the name, no temporary folder
  const fresh = path.join(f.dir, 'fresh');
  await rejectsWith(buildIndex({ ...o, out: fresh, shouldStop: () => true }), ['stopped: no index written']);
  await rejectsWith(buildIndex({ ...o, out: fresh, split: 'nosuch' }), ['nosuch_ims.npy: file not found']);
  assert.equal(fs.existsSync(fresh), false);
  assert.deepEqual(leftovers(f.dir), []);
  // rebuilt over itself with the other checkpoint: replaced whole
  const copy = path.join(f.dir, 'idx-again');
  fs.cpSync(idx, copy, { recursive: true });
  const m = await buildIndex({ ...o, modelPath: modelB, out: copy });
  const onDisk = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8')) as typeof m;
  assert.equal(onDisk.model.sha256, m.model.sha256);
  const first = JSON.parse(fs.readFileSync(path.join(idx, 'manifest.json'), 'utf8')) as typeof m;
  assert.notEqual(m.model.sha256, first.model.sha256);
  assert.deepEqual(leftovers(f.dir), []);
});
