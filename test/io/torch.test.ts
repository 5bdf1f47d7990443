// The torch checkpoint reader against fixtures written by torch 1.13 (scripts/make_torch_fixtures.py): every
// tensor must equal, bit for bit, the HDF5 copy h5py wrote from the same torch tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';
import h5wasm from 'h5wasm/node';
import { RefusedGlobalError } from '../../src/io/pickle.js';
import { flattenModel, readTorchCheckpoint, toCheckpoint, type TorchCheckpoint } from '../../src/io/sgrafCheckpoint.js';
import { loadTorch, readTorchFile } from '../../src/io/torch.js';
import { TORCH_ALLOWED_GLOBALS } from '../../src/io/torchGlobals.js';
import type { TensorRecord } from '../../src/io/torchTensor.js';
import { readZip } from '../../src/io/zip.js';

const FIX = fileURLToPath(new URL('../../../test/fixtures/torch/', import.meta.url));
const fx = (name: string): string => join(FIX, name);
const MARKER = '/tmp/vsl-hostile-pickle-ran';

type Typed = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
interface H5Array {
  shape: number[];
  data: Typed;
}

async function openH5(path: string): Promise<InstanceType<typeof h5wasm.File>> {
  await h5wasm.ready;
  return new h5wasm.File(path, 'r');
}

/** All datasets of one group, as typed arrays (h5wasm gives plain numbers / bigints for 0-d datasets). */
async function h5Group(path: string, group: string): Promise<Map<string, H5Array>> {
  const f = await openH5(path);
  try {
    const g = f.get(group) as InstanceType<typeof h5wasm.Group>;
    const out = new Map<string, H5Array>();
    for (const k of g.keys()) {
      const d = g.get(k) as InstanceType<typeof h5wasm.Dataset>;
      let v = d.value as unknown;
      if (typeof v === 'bigint') v = new BigInt64Array([v]);
      else if (typeof v === 'number') v = d.dtype === '<d' ? new Float64Array([v]) : new Float32Array([v]);
      out.set(k, { shape: d.shape ?? [], data: v as Typed });
    }
    return out;
  } finally {
    f.close();
  }
}

async function h5Attrs(path: string): Promise<Record<string, unknown>> {
  const f = await openH5(path);
  try {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(f.attrs)) o[k] = f.attrs[k].value;
    return o;
  } finally {
    f.close();
  }
}

const DTYPE_CTOR: Record<string, string> = {
  float32: 'Float32Array',
  float64: 'Float64Array',
  float16: 'Float32Array',
  int64: 'BigInt64Array',
  int32: 'Int32Array',
  uint8: 'Uint8Array',
  bool: 'Uint8Array',
};

function sameBits(a: Typed, b: Typed): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function assertTensorEqual(name: string, t: TensorRecord | undefined, want: H5Array, dtype?: string): void {
  assert.ok(t, `${name}: missing`);
  assert.deepEqual(t.shape, want.shape, `${name}: shape`);
  if (dtype) assert.equal(t.dtype, dtype, `${name}: dtype`);
  assert.equal(t.data.constructor.name, DTYPE_CTOR[t.dtype], `${name}: array type for ${t.dtype}`);
  assert.equal(t.data.constructor, want.data.constructor, `${name}: element type`);
  assert.equal(t.data.length, want.data.length, `${name}: length`);
  assert.ok(sameBits(t.data, want.data), `${name}: values differ`);
}

async function checkAgainstH5(ckpt: TorchCheckpoint, h5: string, layout: 'split' | 'flat'): Promise<void> {
  const want = await h5Group(h5, 'weights');
  assert.ok(want.size > 0, `${h5}: no weights`);
  const attrs = await h5Attrs(h5);
  assert.equal(ckpt.layout, layout);
  const flat = flattenModel(ckpt);
  // the same keys, in the file's order (the order torch's state_dict() produced)
  const order = (JSON.parse(String(attrs['key_order_json'])) as string[][]).flat();
  assert.deepEqual([...flat.keys()], order);
  assert.equal(flat.size, want.size);
  for (const [k, w] of want) {
    const dtype = k.endsWith('num_batches_tracked') ? 'int64' : 'float32';
    assertTensorEqual(k, flat.get(k), w, dtype);
  }
  if (layout === 'split') {
    assert.equal(ckpt.model.length, 3);
    ckpt.model.forEach((sd, i) => {
      const prefix = ['img_enc.', 'txt_enc.', 'sim_enc.'][i];
      for (const k of sd.keys()) assert.ok(want.has(prefix + k), `${prefix}${k} not in the HDF5 copy`);
    });
  }
  assert.equal(ckpt.epoch, Number(attrs['epoch']));
  assert.equal(ckpt.eiters, Number(attrs['Eiters']));
  assert.equal(typeof ckpt.bestRsum, 'number');
  assert.ok(
    Object.is(ckpt.bestRsum, attrs['best_rsum']),
    `best_rsum ${ckpt.bestRsum} vs ${String(attrs['best_rsum'])}`,
  );
  assert.deepEqual(ckpt.opt, JSON.parse(String(attrs['opt_json'])));
}

for (const [stem, container, format] of [
  ['sgr', 'zip', 'zip'],
  ['sgr', 'legacy', 'legacy'],
  ['saf', 'zip', 'zip'],
  ['saf', 'legacy', 'legacy'],
  ['sgr', 'zip64', 'zip'],
] as const) {
  test(`${stem}.${container}.pth.tar: every key, shape, dtype and value equals ${stem}.h5; opt, epoch, Eiters, best_rsum`, async () => {
    const ckpt = await readTorchCheckpoint(fx(`${stem}.${container}.pth.tar`));
    assert.equal(ckpt.format, format);
    await checkAgainstH5(ckpt, fx(`${stem}.h5`), 'split');
    assert.ok(ckpt.raw instanceof Map && ckpt.raw.has('best_rsum'));
  });
}

test("the reference checkpoint's key names and shape pattern (SGR and SAF at small dims)", async () => {
  const sgr = flattenModel(await readTorchCheckpoint(fx('sgr.zip.pth.tar')));
  const saf = flattenModel(await readTorchCheckpoint(fx('saf.legacy.pth.tar')));
  const shape = (m: Map<string, TensorRecord>, k: string): number[] | undefined => m.get(k)?.shape;
  for (const m of [sgr, saf]) {
    assert.deepEqual(shape(m, 'img_enc.fc.weight'), [6, 8]);
    assert.deepEqual(shape(m, 'txt_enc.embed.weight'), [10, 4]);
    assert.deepEqual(shape(m, 'txt_enc.cap_rnn.weight_ih_l0_reverse'), [18, 4]);
    assert.deepEqual(shape(m, 'txt_enc.cap_rnn.weight_hh_l0'), [18, 6]);
    assert.deepEqual(shape(m, 'sim_enc.v_global_w.embedding_local.1.running_var'), [36]);
    assert.deepEqual(shape(m, 'sim_enc.v_global_w.embedding_local.1.num_batches_tracked'), []);
    assert.equal(m.get('sim_enc.v_global_w.embedding_local.1.num_batches_tracked')?.dtype, 'int64');
    assert.deepEqual(shape(m, 'sim_enc.sim_eval_w.weight'), [1, 4]);
  }
  assert.deepEqual(shape(sgr, 'sim_enc.SGR_module.0.graph_query_w.weight'), [4, 4]);
  assert.deepEqual(shape(sgr, 'sim_enc.SGR_module.2.sim_graph_w.bias'), [4]);
  assert.equal(sgr.size, 57);
  assert.deepEqual(shape(saf, 'sim_enc.SAF_module.attn_sim_w.weight'), [1, 4]);
  assert.deepEqual(shape(saf, 'sim_enc.SAF_module.bn.num_batches_tracked'), []);
  assert.equal(saf.size, 46);
  // a 2^40 + 3 counter survives as int64
  assert.equal(
    (sgr.get('sim_enc.v_global_w.embedding_global.1.num_batches_tracked')!.data as BigInt64Array)[0],
    2n ** 40n + 3n,
  );
});

test('a checkpoint whose model is one flat state dict: layout "flat", same weights; best_rsum as a Python float', async () => {
  const ckpt = await readTorchCheckpoint(fx('flat.zip.pth.tar'));
  assert.equal(ckpt.model.length, 1);
  await checkAgainstH5(ckpt, fx('sgr.h5'), 'flat');
});

test('zip storages that are aligned in the file are views, not copies; legacy ones are copied', async () => {
  const zip = flattenModel(await readTorchCheckpoint(fx('sgr.zip.pth.tar')));
  const size = readFileSync(fx('sgr.zip.pth.tar')).byteLength;
  assert.ok(zip.size > 0, 'no tensor');
  for (const [k, t] of zip) assert.ok(t.data.buffer.byteLength >= size, `${k} was copied`);
  const legacy = flattenModel(await readTorchCheckpoint(fx('sgr.legacy.pth.tar')));
  assert.ok([...legacy.values()].some((t) => t.data.buffer.byteLength === t.data.byteLength));
});

test('zip64 archive with the torch 2 prefix `archive/` (central directory sizes and offsets in zip64 extras)', () => {
  const bytes = new Uint8Array(readFileSync(fx('sgr.zip64.pth.tar')));
  const entries = readZip(bytes, 'sgr.zip64.pth.tar');
  assert.ok(entries.has('archive/data.pkl'));
  assert.equal(entries.get('archive/version')?.data.length, 2);
  assert.ok([...entries.keys()].filter((n) => n.startsWith('archive/data/')).length > 50);
});

for (const container of ['zip', 'legacy'] as const) {
  test(`views.${container}.pth.tar: transposed, sliced, offset, expanded, shared, float16/64, int32/64, uint8, bool`, async () => {
    const { value, format } = await readTorchFile(fx(`views.${container}.pth.tar`));
    assert.equal(format, container);
    assert.ok(value instanceof Map);
    const want = await h5Group(fx('views.h5'), 'expected');
    const dtypes: Record<string, string> = {
      half: 'float16',
      half_t: 'float16',
      double: 'float64',
      int32: 'int32',
      int64: 'int64',
      uint8: 'uint8',
      bool: 'bool',
    };
    assert.ok(want.size > 0, 'no expected tensor');
    assert.deepEqual([...value.keys()].sort(), [...want.keys()].sort());
    for (const [k, w] of want) assertTensorEqual(k, value.get(k) as TensorRecord, w, dtypes[k] ?? 'float32');
    // the two views of one storage stay consistent with each other
    const a = value.get('shared_a') as TensorRecord;
    const b = value.get('shared_b') as TensorRecord;
    assert.deepEqual([...a.data], [6, 7, 8, 9, 10, 11]);
    assert.deepEqual([...b.data], [2, 3, 8, 9, 14, 15, 20, 21]);
  });
}

// ------------------------------------------------------------------------------------------------ hostile files

for (const [file, global] of [
  ['hostile.zip.pth.tar', 'posix.system'],
  ['hostile.legacy.pth.tar', 'posix.system'],
  ['hostile_eval.zip.pth.tar', 'builtins.eval'],
] as const) {
  test(`${file}: the ${global} payload is refused and does not run`, async () => {
    rmSync(MARKER, { force: true });
    // the fixture really is hostile: its pickle names the global and carries the payload
    const raw = readFileSync(fx(file)).toString('latin1');
    assert.ok(raw.includes(global === 'posix.system' ? 'posix\nsystem' : 'eval') && raw.includes(MARKER));
    await assert.rejects(readTorchCheckpoint(fx(file)), (e: unknown) => {
      assert.ok(e instanceof RefusedGlobalError, String(e));
      assert.equal(e.global, global);
      assert.ok(e.message.includes(global), e.message);
      assert.ok(e.message.startsWith(fx(file)), e.message);
      return true;
    });
    assert.equal(existsSync(MARKER), false, 'the payload ran');
  });
}

test('the allow-list holds only data-building globals', () => {
  for (const g of TORCH_ALLOWED_GLOBALS) {
    assert.match(
      g,
      /^(collections\.OrderedDict|argparse\.Namespace|torch\.|numpy\.(dtype|(_?core)\.multiarray\.scalar)$|_codecs\.encode$)/,
    );
    assert.doesNotMatch(g, /system|eval|exec|Popen|getattr|import|load/);
  }
});

// ------------------------------------------------------------------------------------------------ bad files

const tmp = mkdtempSync(join(tmpdir(), 'vsl-torch-test-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function writeTmp(name: string, data: Uint8Array | string): string {
  const p = join(tmp, name);
  writeFileSync(p, data);
  return p;
}

async function rejectsWith(path: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(readTorchCheckpoint(path), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(e.name, e instanceof RefusedGlobalError ? 'RefusedGlobalError' : 'VslError', String(e));
    assert.ok(e.message.startsWith(path), e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('truncated files: zip cut in half, legacy cut in its storages, legacy cut in its pickle', async () => {
  const zip = readFileSync(fx('sgr.zip.pth.tar'));
  await rejectsWith(
    writeTmp('half.pth.tar', zip.subarray(0, zip.length >> 1)),
    /zip end of central directory/,
    /truncated/,
  );
  const legacy = readFileSync(fx('sgr.legacy.pth.tar'));
  await rejectsWith(
    writeTmp('legacy_storage.pth.tar', legacy.subarray(0, legacy.length - 100)),
    /storage \d+/,
    /truncated storage/,
  );
  await rejectsWith(
    writeTmp('legacy_pickle.pth.tar', legacy.subarray(0, 400)),
    /pickle at byte \d+/,
    /truncated pickle/,
  );
});

test('a zip storage entry shorter than its declared size is a truncated storage', async () => {
  await rejectsWith(
    fx('short_storage.zip.pth.tar'),
    /sgr\.zip\.pth\/data\/0: expected 192 bytes \(48 × float32\), found 96 bytes \(truncated storage\)/,
  );
});

test('non-torch files name what the first bytes were', async () => {
  await rejectsWith(fx('sgr.h5'), /expected a torch checkpoint/, /89 48 44 46/, /HDF5/);
  await rejectsWith(
    writeTmp('page.pth.tar', '<!DOCTYPE html><html>Google Drive - virus scan warning'),
    /3c 21 44 4f 43 54 59 50/,
    /HTML page/,
  );
  await rejectsWith(writeTmp('empty.pth.tar', ''), /found an empty file/);
  await rejectsWith(
    writeTmp('pickle.pth.tar', new Uint8Array([0x80, 2, 0x4b, 7, 0x2e])),
    /legacy torch magic number: expected 0x1950a86a20f9469cfc6c, found 0x7/,
  );
  const onlyZip = zipSync({ 'a.txt': new TextEncoder().encode('hello') }, { level: 0 });
  await rejectsWith(writeTmp('other.zip', onlyZip), /zip entries: expected one <archive>\/data.pkl/, /a\.txt/);
  await assert.rejects(readTorchCheckpoint(join(tmp, 'missing.pth.tar')), /missing\.pth\.tar: file not found/);
});

test('a checkpoint without a model key', async () => {
  await rejectsWith(
    fx('nomodel.zip.pth.tar'),
    /: model: expected a 'model' key in the checkpoint dict, found keys epoch, opt$/,
  );
});

// ------------------------------------------------------------------------------------------------ hand-made zips

const te = new TextEncoder();
function pk(...parts: (number | string | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') out.push(...te.encode(p));
    else out.push(...p);
  }
  return new Uint8Array(out);
}
const bu = (s: string): Uint8Array => pk('X', new Uint8Array(new Uint32Array([te.encode(s).length]).buffer), s);

/** data.pkl for {'model': {'w': _rebuild_tensor_v2(storage(<type>, '0', numel), offset, size, stride)}} */
function tensorPickle(storage: string, numel: number, offset: number, size: number[], stride: number[]): Uint8Array {
  const tuple = (xs: number[]): Uint8Array => pk('(', ...xs.flatMap((x) => ['K', x] as [string, number]), 't');
  return pk(
    0x80,
    2,
    '}',
    bu('model'),
    '}',
    bu('w'),
    'ctorch._utils\n_rebuild_tensor_v2\n',
    '(',
    '(',
    bu('storage'),
    `ctorch\n${storage}\n`,
    bu('0'),
    bu('cpu'),
    'K',
    numel,
    't',
    'Q',
    'K',
    offset,
    tuple(size),
    tuple(stride),
    0x89,
    'N',
    't',
    'R',
    's',
    's',
    '.',
  );
}

test('hand-made zip: a tensor view reaching past its storage is refused', () => {
  const z = zipSync(
    { 'x/data.pkl': tensorPickle('FloatStorage', 4, 1, [2, 2], [2, 1]), 'x/data/0': new Uint8Array(16) },
    { level: 0 },
  );
  assert.throws(
    () => loadTorch(z, 'oob.pth'),
    /oob\.pth: tensor on storage 0: expected a view within the storage's 4 elements, found shape \[2,2\] stride \[2,1\] offset 1 reaching element 4/,
  );
});

test('hand-made zip: an int8 tensor is refused by dtype; a missing storage entry is named', () => {
  const z = zipSync(
    { 'x/data.pkl': tensorPickle('CharStorage', 4, 0, [4], [1]), 'x/data/0': new Uint8Array(4) },
    { level: 0 },
  );
  assert.throws(
    () => loadTorch(z, 'i8.pth'),
    /i8\.pth: tensor on storage 0: expected a float32\/float64\/float16\/int64\/int32\/uint8\/bool tensor, found int8 data \(torch.CharStorage, not supported\)/,
  );
  const z2 = zipSync({ 'x/data.pkl': tensorPickle('FloatStorage', 4, 0, [4], [1]) }, { level: 0 });
  assert.throws(() => loadTorch(z2, 'nodata.pth'), /nodata\.pth: x\/data\/0: expected a storage entry in the archive/);
});

test('hand-made zip, unaligned and deflated: values still decode (copy path, fflate inflate)', () => {
  const f = new Float32Array([1.5, -2.25, 3, 4, 5, 6]);
  const raw = new Uint8Array(f.buffer);
  for (const level of [0, 6] as const) {
    const z = zipSync({ 'x/data.pkl': tensorPickle('FloatStorage', 6, 0, [3, 2], [1, 3]), 'x/data/0': raw }, { level });
    const { value } = loadTorch(z, 'fx.pth');
    const w = ((value as Map<string, unknown>).get('model') as Map<string, TensorRecord>).get('w')!;
    assert.deepEqual(w.shape, [3, 2]);
    assert.deepEqual([...w.data], [1.5, 4, -2.25, 5, 3, 6]);
  }
});

test('numpy scalars: protocol-3 bytes, numpy 2 module name, big-endian dtype, int64', () => {
  const be = new Uint8Array(8);
  new DataView(be.buffer).setFloat64(0, 480.57, false);
  const le = new Uint8Array(new BigInt64Array([-(2n ** 40n)]).buffer);
  const scalar = (mod: string, spec: string, order: string, bytes: Uint8Array): Uint8Array =>
    pk(
      `c${mod}\nscalar\n`,
      'cnumpy\ndtype\n',
      bu(spec),
      0x89,
      0x88,
      0x87,
      'R',
      '(',
      'K',
      3,
      bu(order),
      'N',
      'N',
      'N',
      'J',
      new Uint8Array(new Int32Array([-1]).buffer),
      'J',
      new Uint8Array(new Int32Array([-1]).buffer),
      'K',
      0,
      't',
      'b',
      'C',
      bytes.length,
      bytes,
      0x86,
      'R',
    );
  const data = pk(
    0x80,
    3,
    '}',
    bu('model'),
    '}',
    's',
    bu('best_rsum'),
    scalar('numpy._core.multiarray', 'f8', '>', be),
    's',
    bu('Eiters'),
    scalar('numpy.core.multiarray', 'i8', '<', le),
    's',
    '.',
  );
  const { value, format } = loadTorch(zipSync({ 'a/data.pkl': data }, { level: 0 }), 'np.pth');
  const ckpt = toCheckpoint(value, 'np.pth', format);
  assert.equal(ckpt.bestRsum, 480.57);
  assert.equal(ckpt.eiters, -(2 ** 40));
  assert.equal(ckpt.layout, 'flat');
  assert.deepEqual(ckpt.model, [new Map()]);
  assert.deepEqual(ckpt.opt, {});
});
