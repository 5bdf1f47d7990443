// Issue 13: `vsl eval --shard i/3 --out PART` x 3 then `vsl eval --merge` gives the unsharded run's matrix bit for
// bit and the same report (test, and testall --fold5 with folds that the shard boundaries cut), through the
// binary; parts that do not belong together are refused naming the part and the field.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setLogLevel } from '../../src/util/log.js';
import { selectBackend } from '../../src/ops/backend.js';
import { readNpy } from '../../src/io/npyRead.js';
import { runEval, type EvalJson } from '../../src/cli/eval.js';
import { runEvalOverall, type EvalOverallJson } from '../../src/cli/evalOverall.js';
import type { PartManifest } from '../../src/eval/parts.js';
import {
  errorLine,
  makeCheckpoint,
  makeEvalData,
  vslStart,
  vslSync,
  type EvalFixture,
} from '../helpers/evalFixture.js';

// 32 images: the 3-way shard boundaries (10, 21) fall inside image blocks of 5; testall has 160 = 5 folds of 32,
// cut at 53 and 106, inside folds 1 and 3.
const IMAGES = 32;
let f: EvalFixture;
let modelA = '';
let modelB = '';
const at = (name: string) => path.join(f.dir, name);

before(async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
  f = makeEvalData('scaleout', IMAGES);
  modelA = await makeCheckpoint(f, 'A', { module: 'SGR', seed: 3 });
  modelB = await makeCheckpoint(f, 'B', { module: 'SGR', seed: 4 });
});
after(() => fs.rmSync(f.dir, { recursive: true, force: true }));

/** The unsharded run (2 workers) vs three shards (1 worker each, run side by side) merged. */
async function shardedEqualsUnsharded(tag: string, protocol: string[]): Promise<void> {
  const full = vslSync(f.dir, ['eval', '--model', modelA, ...protocol, '--save-sims', `${tag}-full.npy`]);
  assert.equal(full.status, 0, full.stderr);
  const shards = await Promise.all(
    [0, 1, 2].map(
      (i) =>
        vslStart(
          f.dir,
          ['eval', '--model', modelA, ...protocol, '--workers', '1', '--shard', `${i}/3`, '--out', `${tag}-${i}.npy`],
          'warn',
        ).done,
    ),
  );
  for (const s of shards) assert.equal(s.status, 0, s.stderr);
  const parts = [2, 0, 1].map((i) => `${tag}-${i}.npy`); // any order
  const merged = vslSync(f.dir, ['eval', '--merge', ...parts, '--save-sims', `${tag}-merged.npy`]);
  assert.equal(merged.status, 0, merged.stderr);

  // the matrix, bit for bit (header included)
  assert.ok(
    fs.readFileSync(at(`${tag}-merged.npy`)).equals(fs.readFileSync(at(`${tag}-full.npy`))),
    `${tag}: matrices differ`,
  );
  // the same table (the merge adds one line naming the parts), the same JSON but for times and workers
  assert.ok(
    merged.stdout.startsWith(full.stdout.replace(/scores \(.*\n$/, '')),
    `${tag}:\n${merged.stdout}\nvs\n${full.stdout}`,
  );
  // the JSON reports, in-process this time
  const opts = (p: string[]) => ({
    split: p[p.indexOf('--split') + 1],
    fold5: p.includes('--fold5'),
    foldImages: p.includes('--fold-images') ? p[p.indexOf('--fold-images') + 1] : undefined,
    json: true,
  });
  const a = JSON.parse(
    await runEval({ model: modelA, ...opts(protocol), workDir: at(`${tag}-json.work`) }),
  ) as EvalJson;
  const b = JSON.parse(
    await runEval({ merge: parts.map((p) => at(p.replace('.npy', '.json'))), ...opts(protocol) }),
  ) as EvalJson;
  for (const k of [
    'model',
    'data',
    'nImages',
    'nCaptions',
    'fold5',
    'foldImages',
    'folds',
    'result',
    'backend',
  ] as const)
    assert.deepEqual(b[k], a[k], `${tag}: ${k}`);
  assert.deepEqual(b.sims.shape, a.sims.shape);
  assert.equal(b.parts?.length, 3);
  // the manifests say what the issue asks for
  const m = JSON.parse(fs.readFileSync(at(`${tag}-1.json`), 'utf8')) as PartManifest;
  assert.equal(m.model.sha256.length, 64);
  assert.equal(m.model.module, 'SGR');
  assert.equal(m.data.dataName, 'syn_precomp');
  assert.equal(m.backend, 'wasm');
  assert.equal(typeof m.vsl, 'string');
  assert.deepEqual(m.shard, { index: 1, count: 3 });
  const n = protocol.includes('--fold5') ? 5 * IMAGES : IMAGES;
  assert.deepEqual(m.rows, [Math.floor(n / 3), Math.floor((2 * n) / 3)]);
  // no work directory is left behind once the parts are written
  for (const i of [0, 1, 2]) assert.equal(fs.existsSync(at(`${tag}-${i}.work`)), false);
}

test('test split: shards 0/3..2/3 merged = the unsharded run, bit for bit, same table and JSON', async () => {
  await shardedEqualsUnsharded('t', ['--split', 'test']);
  // eval-overall --sims takes a merged file like any saved matrix
  const out = JSON.parse(
    await runEvalOverall({ sims: [at('t-merged.npy'), at('t-full.npy')], split: 'test', json: true }),
  ) as EvalOverallJson;
  const one = JSON.parse(
    await runEval({ merge: ['t-0.npy', 't-1.npy', 't-2.npy'].map(at), split: 'test', json: true }),
  ) as EvalJson;
  assert.deepEqual(out.ensemble.result, one.result);
});

test('testall --fold5 (5 folds of 32, cut inside folds): merged = unsharded, bit for bit', async () => {
  await shardedEqualsUnsharded('f', ['--split', 'testall', '--fold5', '--fold-images', String(IMAGES)]);
  assert.deepEqual(readNpy(at('f-merged.npy')).shape, [5, IMAGES, 5 * IMAGES]);
});

test('parts that do not belong together are refused, naming the part and the field', async () => {
  const part = async (model: string, split: string, shard: string, out: string) =>
    runEval({ model, split, shard, out: at(out), workers: '1' });
  await part(modelA, 'test', '0/3', 'p0.npy');
  await part(modelA, 'test', '1/3', 'p1.npy');
  await part(modelA, 'test', '2/3', 'p2.npy');
  await part(modelB, 'test', '1/3', 'b1.npy'); // another checkpoint
  await part(modelA, 'dev', '1/3', 'd1.npy'); // another split of the same shape
  await part(modelA, 'test', '0/2', 'h0.npy'); // rows [0, 16): overlaps p0 and p1
  const merge = (...names: string[]) => runEval({ merge: names.map(at), split: 'test' });
  const refused = async (names: string[], ...parts: string[]) => {
    await assert.rejects(merge(...names), (e: Error) => {
      for (const p of parts)
        assert.ok(e.message.includes(p), `${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
      return true;
    });
  };
  await refused(['p0.npy', 'b1.npy', 'p2.npy'], `${at('b1.json')}: model.sha256: expected`);
  await refused(['p0.npy', 'd1.npy', 'p2.npy'], `${at('d1.json')}: data.split: expected "test"`, 'found "dev"');
  await refused(['p0.npy', 'p2.npy'], `${at('p2.json')}: rows:`, 'rows [10, 21) are in no part');
  await refused(['p0.npy', 'p1.npy'], `${at('p1.json')}: rows:`, 'rows [21, 32) are in no part');
  await refused(['p0.npy', 'p1.npy', 'p2.npy', 'h0.npy'], ': rows:', 'overlap');
  // a damaged part: one byte of its rows changed
  fs.copyFileSync(at('p1.npy'), at('x1.npy'));
  fs.writeFileSync(at('x1.json'), fs.readFileSync(at('p1.json'), 'utf8').replace('"p1.npy"', '"x1.npy"'));
  const bytes = fs.readFileSync(at('x1.npy'));
  bytes[bytes.length - 3] ^= 0x40;
  fs.writeFileSync(at('x1.npy'), bytes);
  await refused(['p0.npy', 'x1.npy', 'p2.npy'], `${at('x1.json')}: part.sha256: expected`, 'damaged');
  // a manifest with a field of the wrong type
  const m = JSON.parse(fs.readFileSync(at('p1.json'), 'utf8')) as { protocol: Record<string, unknown> };
  m.protocol.fold5 = 'no';
  fs.writeFileSync(at('y1.json'), JSON.stringify(m));
  await refused(['p0.npy', 'y1.json', 'p2.npy'], `${at('y1.json')}: protocol.fold5:`);
  // through the binary: one line, non-zero exit, nothing on stdout
  const r = vslSync(f.dir, ['eval', '--merge', 'p0.npy', 'b1.npy', 'p2.npy']);
  assert.notEqual(r.status, 0);
  assert.equal(r.stdout, '');
  assert.match(
    errorLine(r.stderr) ?? '',
    /^vsl: b1\.json: model\.sha256: expected "[0-9a-f]{64}" \(as in p0\.json\), found "[0-9a-f]{64}"$/,
  );
  // and the good ones merge
  const ok = JSON.parse(
    await runEval({ merge: ['p1.json', 'p0.json', 'p2.json'].map(at), split: 'test', json: true }),
  ) as EvalJson;
  assert.equal(ok.nImages, IMAGES);
});

test('--shard without --out, a bad --shard, and a part with --save-sims are refused', async () => {
  const base = { model: modelA, split: 'test' };
  const cases: [Parameters<typeof runEval>[0], string][] = [
    [{ ...base, shard: '1/3' }, '--shard: expected --out'],
    [{ ...base, shard: '3/3', out: 'q.npy' }, '--shard: expected i/n with 0 <= i < n'],
    [{ ...base, out: 'q.npy', saveSims: 's.npy' }, '--out: a part holds rows'],
  ];
  for (const [o, msg] of cases) await assert.rejects(runEval(o), (e: Error) => e.message.includes(msg));
});
