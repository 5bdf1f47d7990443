import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import h5wasm from 'h5wasm/node';
import { VslError } from '../../src/util/errors.js';
import { readGroup } from '../../src/io/h5.js';
import {
  CHECKPOINT_FORMAT,
  loadCheckpoint,
  loadWeightsGroup,
  saveCheckpoint,
  type ArrayRecord,
  type CheckpointData,
} from '../../src/io/checkpoint.js';
import { GOLDEN } from '../helpers/paths.js';

const GOLDEN_SGR = path.join(GOLDEN, 'SGR.h5');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-ckpt-test-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function f32(shape: number[], seed: number): ArrayRecord {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(seed * 1000 + i * 0.37) * 10 ** ((i % 7) - 3);
  return { shape, data };
}

function sample(seed = 1): CheckpointData {
  const special = f32([2, 4], seed);
  (special.data as Float32Array).set([NaN, -0, Infinity, -Infinity, 1e-45 /* subnormal */, 3.4028234663852886e38], 0);
  const weights = new Map<string, ArrayRecord>([
    ['img_enc.fc.weight', f32([8, 12], seed)],
    ['img_enc.fc.bias', f32([8], seed + 1)],
    ['txt_enc.cap_rnn.weight_ih_l0_reverse', f32([3, 5], seed + 2)],
    ['sim_enc.v_global_w.embedding_local.1.running_mean', special],
    [
      'sim_enc.v_global_w.embedding_local.1.num_batches_tracked',
      { shape: [], data: new BigInt64Array([2n ** 60n + 7n]) },
    ],
    ['sim_enc.SAF_module.bn.num_batches_tracked', { shape: [], data: new BigInt64Array([-3n]) }],
    ['sim_enc.scalar_param', { shape: [], data: new Float32Array([0.1]) }],
    ['sim_enc.empty', { shape: [0, 3], data: new Float32Array(0) }],
    ['a.key.saved.after.others', f32([1, 1, 2], seed + 3)],
  ]);
  const m = new Map<string, ArrayRecord>();
  const v = new Map<string, ArrayRecord>();
  for (const k of ['img_enc.fc.weight', 'img_enc.fc.bias', 'txt_enc.cap_rnn.weight_ih_l0_reverse']) {
    const w = weights.get(k)!;
    m.set(k, f32(w.shape, seed + 10));
    v.set(k, f32(w.shape, seed + 20));
  }
  return {
    weights,
    options: { module_name: 'SGR', sgr_step: 3, bi_gru: true, margin: 0.2, nested: { list: [1, 'two', null] }, seed },
    epoch: 7,
    iteration: 123456789,
    bestRsum: 512.3456789,
    optimizer: { step: 98765, m, v },
    dataOrder: { rng: [1, 2, 3, 4], perm: [3, 0, 2, 1], epoch: 7 },
    extra: { note: 'héllo → ✓', git: 'abc123' },
  };
}

function bytes(rec: ArrayRecord): Buffer {
  return Buffer.from(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength);
}

/** Exact equality: same keys in the same order, same shapes, same dtype, bit-identical data. */
function assertRecordsEqual(got: Map<string, ArrayRecord>, want: Map<string, ArrayRecord>, what: string): void {
  assert.deepEqual([...got.keys()], [...want.keys()], `${what}: keys`);
  for (const [k, w] of want) {
    const g = got.get(k)!;
    assert.deepEqual(g.shape, w.shape, `${what}/${k}: shape`);
    assert.equal(g.data.constructor, w.data.constructor, `${what}/${k}: dtype`);
    assert.ok(bytes(g).equals(bytes(w)), `${what}/${k}: data`);
  }
}

function assertCheckpointEqual(got: CheckpointData, want: CheckpointData): void {
  assertRecordsEqual(got.weights, want.weights, 'weights');
  assert.deepEqual(got.options, want.options);
  assert.equal(got.epoch, want.epoch);
  assert.equal(got.iteration, want.iteration);
  assert.equal(got.bestRsum, want.bestRsum);
  assert.deepEqual(got.dataOrder, want.dataOrder);
  assert.deepEqual(got.extra, want.extra);
  if (want.optimizer) {
    assert.ok(got.optimizer);
    assert.equal(got.optimizer.step, want.optimizer.step);
    assertRecordsEqual(got.optimizer.m, want.optimizer.m, 'optimizer/m');
    assertRecordsEqual(got.optimizer.v, want.optimizer.v, 'optimizer/v');
  } else {
    assert.equal(got.optimizer, undefined);
  }
}

function leftovers(d: string): string[] {
  return fs.readdirSync(d).filter((n) => n.includes('.tmp-'));
}

async function rejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof VslError, `expected a VslError, got ${String(e)}`);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

/** Write an arbitrary HDF5 file for the malformed-input cases. */
async function writeRaw(p: string, build: (f: InstanceType<typeof h5wasm.File>) => void): Promise<void> {
  await h5wasm.ready;
  const f = new h5wasm.File(p, 'w');
  build(f);
  f.close();
}

test('round trip: weights (float32 and 0-d int64), options, counters, optimizer, data order, extra', async () => {
  const p = path.join(dir, 'rt.h5');
  const ck = sample();
  await saveCheckpoint(p, ck);
  assert.deepEqual(leftovers(dir), []);
  const back = await loadCheckpoint(p);
  assertCheckpointEqual(back, ck);
  const nbt = back.weights.get('sim_enc.v_global_w.embedding_local.1.num_batches_tracked')!;
  assert.deepEqual(nbt.shape, []);
  assert.ok(nbt.data instanceof BigInt64Array);
  assert.equal(nbt.data[0], 2n ** 60n + 7n);
  // NaN, -0 and subnormals survive bit for bit
  const sp = back.weights.get('sim_enc.v_global_w.embedding_local.1.running_mean')!.data as Float32Array;
  assert.ok(Number.isNaN(sp[0]));
  assert.ok(Object.is(sp[1], -0));
  assert.ok(sp[4] > 0 && sp[4] < 1e-44);
});

test('the file follows the documented layout', async () => {
  const p = path.join(dir, 'layout.h5');
  const ck = sample(3);
  await saveCheckpoint(p, ck);
  await h5wasm.ready;
  const f = new h5wasm.File(p, 'r');
  try {
    assert.equal(f.attrs['format'].value, CHECKPOINT_FORMAT);
    const json = (name: string): unknown => {
      const v = f.attrs[name].value;
      assert.ok(typeof v === 'string', `${name}: a string attribute`);
      return JSON.parse(v);
    };
    assert.deepEqual(json('options_json'), ck.options);
    assert.deepEqual(json('data_order_json'), ck.dataOrder);
    assert.deepEqual(json('extra_json'), ck.extra);
    assert.equal(f.attrs['epoch'].value, 7n);
    assert.equal(f.attrs['iteration'].value, 123456789n);
    assert.equal(f.attrs['optimizer_step'].value, 98765n);
    assert.equal(f.attrs['best_rsum'].value, 512.3456789);
    const w = f.get('weights/img_enc.fc.weight');
    assert.ok(w instanceof h5wasm.Dataset);
    assert.equal(w.dtype, '<f');
    assert.deepEqual(w.shape, [8, 12]);
    const nbt = f.get('weights/sim_enc.SAF_module.bn.num_batches_tracked');
    assert.ok(nbt instanceof h5wasm.Dataset);
    assert.equal(nbt.dtype, '<q');
    assert.deepEqual(nbt.shape, []);
    assert.ok(f.get('optimizer/m/img_enc.fc.bias') instanceof h5wasm.Dataset);
    assert.ok(f.get('optimizer/v/img_enc.fc.bias') instanceof h5wasm.Dataset);
  } finally {
    f.close();
  }
});

test('optional parts absent: no optimizer, no data order, no extra', async () => {
  const p = path.join(dir, 'minimal.h5');
  const { weights, options } = sample(4);
  const ck: CheckpointData = { weights, options, epoch: 0, iteration: 0, bestRsum: 0 };
  await saveCheckpoint(p, ck);
  const back = await loadCheckpoint(p);
  assertCheckpointEqual(back, ck);
  assert.equal('optimizer' in back, false);
  assert.equal('dataOrder' in back, false);
  assert.equal('extra' in back, false);
});

test('saving over an existing checkpoint replaces it', async () => {
  const p = path.join(dir, 'over.h5');
  await saveCheckpoint(p, sample(5));
  const b = sample(6);
  b.epoch = 8;
  await saveCheckpoint(p, b);
  assertCheckpointEqual(await loadCheckpoint(p), b);
  assert.deepEqual(leftovers(dir), []);
});

test('a failure in the middle of writing keeps the previous file and removes the temp file', async () => {
  const p = path.join(dir, 'keep.h5');
  const a = sample(7);
  await saveCheckpoint(p, a);

  // a weight whose data does not match its shape, after some weights were already written
  const bad = sample(8);
  bad.weights.set('txt_enc.zz_bad', { shape: [3, 3], data: new Float32Array(8) });
  await rejectsWith(
    saveCheckpoint(p, bad),
    new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
    /txt_enc\.zz_bad/,
    /9 elements but data has 8/,
  );
  assert.deepEqual(leftovers(dir), []);
  assertCheckpointEqual(await loadCheckpoint(p), a);

  // a key HDF5 cannot hold as one dataset name
  const slash = sample(9);
  slash.weights.set('img_enc/fc', f32([2], 1));
  await rejectsWith(saveCheckpoint(p, slash), /img_enc\/fc/, /without "\/"/);
  assert.deepEqual(leftovers(dir), []);
  assertCheckpointEqual(await loadCheckpoint(p), a);

  // options that are not JSON
  const notJson = sample(10);
  notJson.options = { big: 10n };
  await rejectsWith(saveCheckpoint(p, notJson), /options/, /BigInt/);
  assert.deepEqual(leftovers(dir), []);
  assertCheckpointEqual(await loadCheckpoint(p), a);

  // wrong element type for a weight
  const f64 = sample(11);
  f64.weights.set('a.key.saved.after.others', { shape: [2], data: new Float64Array(2) as unknown as Float32Array });
  await rejectsWith(saveCheckpoint(p, f64), /a\.key\.saved\.after\.others/, /Float64Array/);
  assert.deepEqual(leftovers(dir), []);
  assertCheckpointEqual(await loadCheckpoint(p), a);
});

test('inconsistent optimizer state is refused before anything is written', async () => {
  const p = path.join(dir, 'opt.h5');
  const a = sample(12);
  await saveCheckpoint(p, a);
  const before = fs.statSync(p).mtimeMs;
  const orphan = sample(13);
  orphan.optimizer!.m.set('not.a.weight', f32([1], 1));
  orphan.optimizer!.v.set('not.a.weight', f32([1], 1));
  await rejectsWith(saveCheckpoint(p, orphan), /not\.a\.weight/, /not in weights/);
  const shape = sample(14);
  shape.optimizer!.v.set('img_enc.fc.bias', f32([9], 1));
  await rejectsWith(saveCheckpoint(p, shape), /optimizer\/v\/img_enc\.fc\.bias/, /\[8\]/);
  const missing = sample(15);
  missing.optimizer!.v.delete('img_enc.fc.bias');
  await rejectsWith(saveCheckpoint(p, missing), /optimizer\.v/, /img_enc\.fc\.bias/);
  const negative = sample(16);
  negative.epoch = -1;
  await rejectsWith(saveCheckpoint(p, negative), /epoch/, /non-negative integer/);
  assert.equal(fs.statSync(p).mtimeMs, before);
  assert.deepEqual(leftovers(dir), []);
  assertCheckpointEqual(await loadCheckpoint(p), a);
});

test('unwritable destinations are clear errors that name the path', async () => {
  // parent is a regular file
  const file = path.join(dir, 'plain.txt');
  fs.writeFileSync(file, 'x');
  const underFile = path.join(file, 'ck.h5');
  await rejectsWith(
    saveCheckpoint(underFile, sample()),
    new RegExp(underFile.replace(/[.]/g, '\\.')),
    /not a directory/,
  );
  // missing directory
  const missing = path.join(dir, 'no', 'such', 'ck.h5');
  await rejectsWith(saveCheckpoint(missing, sample()), /no\/such\/ck\.h5: cannot save checkpoint/, /does not exist/);
  assert.equal(fs.existsSync(path.join(dir, 'no')), false);
  // the destination is a directory: it is left alone
  const sub = path.join(dir, 'adir');
  fs.mkdirSync(sub);
  await rejectsWith(saveCheckpoint(sub, sample()), /adir: cannot save checkpoint/, /is a directory/);
  assert.ok(fs.statSync(sub).isDirectory());
  assert.deepEqual(leftovers(dir), []);
});

test('an existing directory that refuses new files (EACCES/EROFS even for root) is a clear error', async (t) => {
  // Tests run as root, where chmod does not stop writes; /sys refuses file creation to everyone.
  let probe: string | null = null;
  for (const d of ['/sys', '/proc']) {
    try {
      if (!fs.statSync(d).isDirectory()) continue;
      fs.writeFileSync(path.join(d, `vsl-probe-${process.pid}`), '');
      fs.rmSync(path.join(d, `vsl-probe-${process.pid}`), { force: true });
    } catch (e) {
      if (['EACCES', 'EROFS', 'EPERM'].includes((e as NodeJS.ErrnoException).code ?? '')) {
        probe = d;
        break;
      }
    }
  }
  if (probe === null) {
    // As a non-root user a read-only directory does the job.
    if (process.getuid?.() === 0) return t.skip('no directory refuses writes to root here');
    probe = path.join(dir, 'ro');
    fs.mkdirSync(probe);
    fs.chmodSync(probe, 0o555);
  }
  const target = path.join(probe, 'ck.h5');
  await rejectsWith(
    saveCheckpoint(target, sample()),
    new RegExp(`${target}: cannot save checkpoint`),
    /not writable/,
    /EACCES|EROFS|EPERM|permission|read-only/i,
  );
});

test('load errors: missing file, not HDF5, not a vsl checkpoint, no weights group, wrong dtype', async () => {
  await rejectsWith(loadCheckpoint(path.join(dir, 'absent.h5')), /absent\.h5: file not found/);

  const text = path.join(dir, 'text.h5');
  fs.writeFileSync(text, 'this is not HDF5\n'.repeat(100));
  await rejectsWith(loadCheckpoint(text), /text\.h5: file: expected an HDF5 file/, /file signature not found/);

  const noFormat = path.join(dir, 'noformat.h5');
  await writeRaw(noFormat, (f) => {
    f.create_group('weights').create_dataset({ name: 'x', data: new Float32Array([1]), shape: [1] });
  });
  await rejectsWith(
    loadCheckpoint(noFormat),
    /noformat\.h5: attribute format: expected "vsl-checkpoint-1"/,
    /found no format attribute/,
  );

  const wrongFormat = path.join(dir, 'wrongformat.h5');
  await writeRaw(wrongFormat, (f) => f.create_attribute('format', 'something-else'));
  await rejectsWith(loadCheckpoint(wrongFormat), /attribute format/, /"something-else"/);

  const noWeights = path.join(dir, 'noweights.h5');
  await writeRaw(noWeights, (f) => {
    f.create_attribute('format', CHECKPOINT_FORMAT);
    f.create_attribute('options_json', '{}');
  });
  await rejectsWith(loadCheckpoint(noWeights), /noweights\.h5: weights: expected a group/, /nothing of that name/);

  const f64 = path.join(dir, 'f64.h5');
  await writeRaw(f64, (f) => {
    f.create_attribute('format', CHECKPOINT_FORMAT);
    f.create_attribute('options_json', '{}');
    const g = f.create_group('weights');
    g.create_dataset({ name: 'img_enc.fc.weight', data: new Float32Array(4), shape: [2, 2] });
    g.create_dataset({ name: 'img_enc.fc.bias', data: new Float64Array(2), shape: [2] });
  });
  await rejectsWith(
    loadCheckpoint(f64),
    /f64\.h5: weights\/img_enc\.fc\.bias: expected a float32 or int64 dataset, found float64/,
  );

  const i32 = path.join(dir, 'i32.h5');
  await writeRaw(i32, (f) => {
    f.create_attribute('format', CHECKPOINT_FORMAT);
    f.create_group('weights').create_dataset({ name: 'bn.num_batches_tracked', data: new Int32Array([3]), shape: [] });
  });
  await rejectsWith(loadCheckpoint(i32), /weights\/bn\.num_batches_tracked/, /found int32/);

  const badJson = path.join(dir, 'badjson.h5');
  await writeRaw(badJson, (f) => {
    f.create_attribute('format', CHECKPOINT_FORMAT);
    f.create_attribute('options_json', '{not json');
    f.create_group('weights');
  });
  await rejectsWith(loadCheckpoint(badJson), /attribute options_json: expected valid JSON/);

  // a golden reference file is not a vsl checkpoint, and the error says where to look
  await rejectsWith(loadCheckpoint(GOLDEN_SGR), /attribute format/, /loadWeightsGroup/);
});

test('loadWeightsGroup reads the golden reference weights with their dtypes and shapes', async () => {
  const w = await loadWeightsGroup(GOLDEN_SGR);
  const plain = await readGroup(GOLDEN_SGR, 'weights');
  assert.deepEqual([...w.keys()].sort(), [...plain.keys()].sort());
  assert.ok(w.size > 40);
  for (const [k, rec] of w) {
    const ref = plain.get(k)!;
    assert.deepEqual(rec.shape, ref.shape, k);
    if (k.endsWith('num_batches_tracked')) {
      assert.ok(rec.data instanceof BigInt64Array, k);
      assert.deepEqual(rec.shape, [], k);
    } else {
      assert.ok(rec.data instanceof Float32Array, k);
      assert.deepEqual([...rec.data], [...(ref.data as Float32Array)], k);
    }
    assert.ok(/^(img_enc|txt_enc|sim_enc)\./.test(k), k);
  }
  // README: img_dim 64, embed_size 32 -> fc.weight is [out, in] = [32, 64]
  assert.deepEqual(w.get('img_enc.fc.weight')?.shape, [32, 64]);

  // the same function reads a vsl checkpoint's weights and its optimizer groups
  const p = path.join(dir, 'wg.h5');
  const ck = sample(21);
  await saveCheckpoint(p, ck);
  assertRecordsEqual(await loadWeightsGroup(p), ck.weights, 'weights');
  assertRecordsEqual(await loadWeightsGroup(p, 'optimizer/m'), ck.optimizer!.m, 'optimizer/m');
  await rejectsWith(loadWeightsGroup(p, 'nope'), /wg\.h5: nope: expected a group/);
});
