// The torch checkpoint writer: the protocol-2 pickle of plain data (read back by vsl's own unpickler), torch's
// zip layout (stored entries, data on 64-byte boundaries, CRC-32), and `vsl export` end to end. The fixture
// test/fixtures/reference/sgr_export.pth.tar is what `vsl export` wrote for the reference's sgr_init.pth.tar,
// checked with Debian's python3-torch by scripts/make_reference_fixtures.sh (torch.load gives back the
// reference's own tensors, dtypes, opt and counters; the reference's evalrank scores it as vsl eval does): the
// writer must keep producing exactly that file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { unpickle, PyObject } from '../../src/io/pickle.js';
import { pickle, py, type PyValue } from '../../src/io/pickleWrite.js';
import { storedZip } from '../../src/io/zipWrite.js';
import { readTorchCheckpoint } from '../../src/io/sgrafCheckpoint.js';
import { saveCheckpoint, type ArrayRecord } from '../../src/io/checkpoint.js';
import { readModelFile } from '../../src/eval/loadModel.js';
import { runConvert } from '../../src/cli/convert.js';
import { runExport } from '../../src/cli/export.js';
import { defaultModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { resolveOptions } from '../../src/train/options.js';
import { selectBackend } from '../../src/ops/backend.js';
import { setLogLevel } from '../../src/util/log.js';
import { REPO_ROOT } from '../helpers/paths.js';

const REF = path.join(REPO_ROOT, 'test/fixtures/reference');
let tmp = '';

before(async () => {
  setLogLevel('warn');
  await selectBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-export-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const plain = (bytes: Uint8Array, allow = new Map<string, unknown>()) => unpickle(bytes, { allow }).value;

test('pickle: ints at every opcode boundary, floats, strings, None, bools, tuples, lists, dicts', () => {
  const ints = [0, 1, 255, 256, 65535, 65536, -1, -256, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1];
  for (const n of ints) assert.equal(plain(pickle(py.int(n))), n, `int ${n}`);
  for (const n of [2n ** 63n - 1n, -(2n ** 63n), 2n ** 70n, -(2n ** 70n) - 5n])
    assert.equal(plain(pickle(py.int(n))), n, `int ${n}`);
  for (const x of [0.0002, -2.5, 1e300, 0, Infinity]) assert.equal(plain(pickle(py.float(x))), x);
  assert.ok(Number.isNaN(plain(pickle(py.float(NaN)))));
  for (const s of ['', 'SGR', './data', 'naïve ☃ 𝔘', 'a\nb']) assert.equal(plain(pickle(s)), s);
  assert.equal(plain(pickle(null)), null);
  assert.equal(plain(pickle(true)), true);
  assert.equal(plain(pickle(false)), false);
  for (let n = 0; n <= 5; n++) {
    const t = plain(pickle(py.tuple(...Array.from({ length: n }, (_, i) => py.int(i))))) as unknown[];
    assert.ok(Object.isFrozen(t), 'a tuple reads back as a tuple');
    assert.deepEqual([...t], [...Array(n).keys()]);
  }
  const long = Array.from({ length: 2500 }, (_, i) => py.int(i)); // three APPENDS batches
  assert.deepEqual(plain(pickle(long)), [...Array(2500).keys()]);
  const d = plain(
    pickle(
      new Map<string, PyValue>([
        ['a', py.int(1)],
        ['b', [py.float(0.5), 'x']],
      ]),
    ),
  ) as Map<string, unknown>;
  assert.deepEqual(
    [...d],
    [
      ['a', 1],
      ['b', [0.5, 'x']],
    ],
  );
});

test('pickle: OrderedDict, argparse.Namespace and persistent ids name only their globals', () => {
  const seen: string[] = [];
  const allow = new Map<string, unknown>([
    ['collections.OrderedDict', () => new Map()],
    ['argparse.Namespace', () => new PyObject('argparse.Namespace')],
  ]);
  const value = py.tuple(
    py.orderedDict([
      ['w', py.int(3)],
      ['v', 'x'],
    ]),
    py.instance(py.global('argparse', 'Namespace'), new Map<string, PyValue>([['lr', py.float(0.0002)]])),
    py.persistent(py.tuple('storage', 'key0')),
  );
  const out = unpickle(pickle(value), {
    allow,
    persistentLoad: (pid) => {
      seen.push(JSON.stringify(pid));
      return 'resolved';
    },
  }).value as unknown[];
  assert.deepEqual(
    [...(out[0] as Map<string, unknown>)],
    [
      ['w', 3],
      ['v', 'x'],
    ],
  );
  assert.equal((out[1] as PyObject).attrs.lr, 0.0002);
  assert.equal(out[2], 'resolved');
  assert.deepEqual(seen, ['["storage","key0"]']);
  // the same pickle with an empty allow-list is refused at its first global
  assert.throws(() => unpickle(pickle(value), { allow: new Map() }), /collections\.OrderedDict/);
});

/** Local headers of a zip: name, method, data offset, size, crc (the archive as storedZip writes it). */
function localEntries(zip: Uint8Array) {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const out = [];
  let p = 0;
  while (dv.getUint32(p, true) === 0x04034b50) {
    const method = dv.getUint16(p + 8, true);
    const crc = dv.getUint32(p + 14, true);
    const size = dv.getUint32(p + 18, true);
    const nameLen = dv.getUint16(p + 26, true);
    const extraLen = dv.getUint16(p + 28, true);
    const name = new TextDecoder().decode(zip.subarray(p + 30, p + 30 + nameLen));
    const start = p + 30 + nameLen + extraLen;
    out.push({ name, method, start, size, crc, data: zip.subarray(start, start + size) });
    p = start + size;
  }
  return out;
}

test('zip: stored entries in order, each one starting on a 64-byte boundary, with their CRC-32', () => {
  const entries = [3, 0, 1, 2, 62, 63, 64, 65, 200].map((n, i) => ({
    name: `archive/${'x'.repeat(i)}data/${i}`,
    data: Uint8Array.from({ length: n }, (_, k) => (k * 7 + i) & 255),
  }));
  const zip = storedZip(entries);
  const got = localEntries(zip);
  assert.deepEqual(
    got.map((e) => e.name),
    entries.map((e) => e.name),
  );
  got.forEach((e, i) => {
    assert.equal(e.method, 0, e.name);
    assert.equal(e.start % 64, 0, `${e.name} starts at ${e.start}`);
    assert.deepEqual(e.data, entries[i].data);
    assert.equal(e.crc, zlib.crc32(entries[i].data), e.name);
  });
});

test("vsl export of the reference's initial checkpoint: byte for byte the file torch.load and evalrank read", async () => {
  const h5 = path.join(tmp, 'sgr_init.h5');
  await runConvert(path.join(REF, 'sgr_init.pth.tar'), { output: h5 });
  const out = path.join(tmp, 'sgr_export.pth.tar');
  const msg = await runExport(h5, { output: out });
  assert.match(msg, /SGR, vocab 75/);
  assert.deepEqual(fs.readFileSync(out), fs.readFileSync(path.join(REF, 'sgr_export.pth.tar')));
  // and it holds what the reference wrote: the same tensors under the same keys, the same opt and counters
  const [a, b] = await Promise.all([readTorchCheckpoint(path.join(REF, 'sgr_init.pth.tar')), readTorchCheckpoint(out)]);
  assert.equal(b.layout, 'split');
  assert.equal(a.model.length, 3, 'img_enc, txt_enc, sim_enc');
  assert.ok(
    a.model.every((sd) => sd.size > 0),
    'an empty state dict',
  );
  assert.deepEqual(
    b.model.map((sd) => [...sd.keys()]),
    a.model.map((sd) => [...sd.keys()]),
  );
  a.model.forEach((sd, i) => {
    for (const [k, t] of sd) {
      const u = b.model[i].get(k)!;
      assert.equal(u.dtype, t.dtype, k);
      assert.deepEqual(u.shape, t.shape, k);
      assert.deepEqual(u.data, t.data, k);
    }
  });
  assert.deepEqual(b.opt, a.opt);
  assert.deepEqual([b.epoch, b.eiters, b.bestRsum], [a.epoch, a.eiters, a.bestRsum]);
  assert.equal(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-')).length, 0);
});

test("vsl export of a vsl-trained checkpoint: the options of the run under the reference's names", async () => {
  const c = defaultModelConfig({ module: 'SAF', vocabSize: 20, imgDim: 12, wordDim: 6, embedSize: 8, simDim: 4 });
  const reg = ParamRegistry.init(c, 2);
  const train = resolveOptions(
    {},
    {
      module: 'SAF',
      imgDim: 12,
      wordDim: 6,
      embedSize: 8,
      simDim: 4,
      dataName: 'f30k_precomp',
      dataPath: '/d',
      batchSize: 32,
      learningRate: 0.0003,
      maxViolation: false,
      gradClip: 2,
      numEpochs: 30,
      lrUpdate: 15,
    },
    'test',
  );
  const src = path.join(tmp, 'trained.h5');
  await saveCheckpoint(src, {
    weights: (await reg.toArrays()) as Map<string, ArrayRecord>,
    options: { model: c, data: { dataName: 'f30k_precomp', dataPath: '/d', vocabPath: '/v' }, train },
    epoch: 12,
    iteration: 5432,
    bestRsum: 501.25,
  });
  const out = path.join(tmp, 'trained.pth.tar');
  await runExport(src, { output: out });
  const ck = await readTorchCheckpoint(out);
  assert.deepEqual([ck.epoch, ck.eiters, ck.bestRsum], [12, 5432, 501.25]);
  assert.deepEqual(ck.opt, {
    data_path: '/d',
    data_name: 'f30k_precomp',
    vocab_path: '/v',
    model_name: './checkpoint',
    logger_name: './log',
    batch_size: 32,
    num_epochs: 30,
    lr_update: 15,
    learning_rate: 0.0003,
    workers: 10,
    log_step: 10,
    val_step: 1000,
    grad_clip: 2,
    margin: 0.2,
    max_violation: false,
    img_dim: 12,
    word_dim: 6,
    embed_size: 8,
    sim_dim: 4,
    num_layers: 1,
    bi_gru: true,
    no_imgnorm: false,
    no_txtnorm: false,
    module_name: 'SAF',
    sgr_step: 3,
    vocab_size: 20,
  });
  const back = await readModelFile(out);
  const want = await reg.toArrays();
  assert.deepEqual([...back.arrays.keys()], [...want.keys()]);
  for (const [k, v] of want) assert.deepEqual(back.arrays.get(k)!.data, v.data, k);
  reg.dispose();
});

test('vsl export into a missing directory or onto a directory: one clear error, nothing left behind', async () => {
  const h5 = path.join(tmp, 'sgr_init2.h5');
  await runConvert(path.join(REF, 'sgr_init.pth.tar'), { output: h5 });
  const nowhere = path.join(tmp, 'no', 'such', 'x.pth.tar');
  await assert.rejects(runExport(h5, { output: nowhere }), (e: Error) =>
    e.message.startsWith(`${nowhere}: cannot write`),
  );
  const dir = path.join(tmp, 'adir');
  fs.mkdirSync(dir);
  await assert.rejects(runExport(h5, { output: dir }), /the path is a directory/);
  assert.equal(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-')).length, 0);
});
