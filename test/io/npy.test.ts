import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHalfBits } from '../../src/io/binary.js';
import { encodeNpyHeader, type NpyDtype } from '../../src/io/npyHeader.js';
import { expectFeatures, openNpy, readNpy, readNpyHeader } from '../../src/io/npyRead.js';
import { createNpyWriter, writeNpy } from '../../src/io/npyWrite.js';
import { VslError } from '../../src/util/errors.js';

// dist/test/io/x.test.js -> repo root
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FIX = path.join(ROOT, 'test/fixtures/npy');

interface Expected {
  good: Record<string, { shape: number[]; dtype: string; version: string; values: number[] }>;
  bad: Record<string, string[]>;
}
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as Expected;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-npy-'));
}

function assertThrowsWith(fn: () => unknown, parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VslError, `expected a VslError, got ${String(e)}`);
    for (const p of parts)
      assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    return true;
  });
}

/** The .npy files of the fixture folder: the bad ones are named bad_*. */
const fixtureFiles = (bad: boolean) =>
  fs
    .readdirSync(FIX)
    .filter((n) => n.endsWith('.npy') && n.startsWith('bad_') === bad)
    .sort();

test('reads every numpy-written fixture (versions 1.0/2.0/3.0; f4, f2, f8, i4, i8)', () => {
  assert.ok(fixtureFiles(false).length > 0, 'no good fixture');
  assert.deepEqual(Object.keys(expected.good).sort(), fixtureFiles(false), 'expected.json lists every good fixture');
  for (const [name, exp] of Object.entries(expected.good)) {
    const r = readNpy(path.join(FIX, name));
    assert.deepEqual(r.shape, exp.shape, name);
    assert.equal(r.dtype, exp.dtype, name);
    assert.equal(readNpyHeader(path.join(FIX, name)).version, exp.version, name);
    assert.deepEqual(
      Array.from(r.data),
      exp.values.map((v) => Math.fround(v)),
      name,
    );
  }
});

test('rejects bad files with a message naming the file, field, expected and found', () => {
  assert.ok(fixtureFiles(true).length > 0, 'no bad fixture');
  assert.deepEqual(Object.keys(expected.bad).sort(), fixtureFiles(true), 'expected.json lists every bad fixture');
  for (const [name, parts] of Object.entries(expected.bad)) {
    const file = path.join(FIX, name);
    assertThrowsWith(() => openNpy(file), [file, ...parts]);
  }
});

test('missing file names the path', () => {
  const file = path.join(FIX, 'does-not-exist.npy');
  assertThrowsWith(() => openNpy(file), [file, 'not found']);
});

test('round-trips every dtype and version through the writer, and numpy-compatible headers', () => {
  const dir = tmpDir();
  try {
    const shape = [3, 2, 5];
    const vals = Array.from({ length: 30 }, (_, i) => (i - 11) * 0.75);
    for (const dtype of ['<f4', '<f2', '<f8', '<i4', '<i8'] as NpyDtype[]) {
      for (const version of [1, 2, 3] as const) {
        const file = path.join(dir, `x_${dtype.slice(1)}_${version}.npy`);
        const data = dtype[1] === 'i' ? vals.map((v) => Math.trunc(v) + 0) : vals;
        writeNpy(file, data, shape, dtype, { version });
        const h = readNpyHeader(file);
        assert.equal(h.version, `${version}.0`);
        assert.equal(h.dtype, dtype);
        assert.equal(h.dataOffset % 64, 0, 'header padded to 64 bytes as numpy does');
        const r = readNpy(file);
        assert.deepEqual(r.shape, shape);
        assert.deepEqual(
          Array.from(r.data),
          data.map((v) => Math.fround(v)),
          `${dtype} v${version}`,
        );
      }
    }
    // The file layout is byte-identical to numpy's for the fixture content.
    const fx = expected.good['v1_f4.npy'];
    const mine = path.join(dir, 'same.npy');
    writeNpy(mine, fx.values, fx.shape, '<f4');
    assert.deepEqual(fs.readFileSync(mine), fs.readFileSync(path.join(FIX, 'v1_f4.npy')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('half-precision encoding rounds to nearest even and handles specials', () => {
  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(-2), 0xc000);
  assert.equal(toHalfBits(65504), 0x7bff);
  assert.equal(toHalfBits(1e6), 0x7c00);
  assert.equal(toHalfBits(-Infinity), 0xfc00);
  assert.equal(toHalfBits(NaN) & 0x7c00, 0x7c00);
  assert.equal(toHalfBits(2 ** -24), 0x0001);
  assert.equal(toHalfBits(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
});

test('random access: readRows ranges and readRowsIndexed in requested order with duplicates', () => {
  const dir = tmpDir();
  try {
    const n = 50;
    const rowSize = 36 * 3;
    const file = path.join(dir, 'feat.npy');
    const w = createNpyWriter(file, [n, 36, 3]);
    for (let i = 0; i < n; i++) w.append(Float32Array.from({ length: rowSize }, (_, k) => i * 1000 + k));
    w.close();
    const h = openNpy(file);
    try {
      expectFeatures(h, { regions: 36, dim: 3 });
      assert.equal(h.nRows, n);
      assert.equal(h.rowSize, rowSize);
      const rows = h.readRows(7, 10);
      assert.equal(rows.length, 3 * rowSize);
      for (let r = 0; r < 3; r++)
        for (let k = 0; k < rowSize; k++) assert.equal(rows[r * rowSize + k], (7 + r) * 1000 + k);
      assert.equal(h.readRows(5, 5).length, 0);
      const idx = [42, 3, 4, 3, 49, 0, 5, 17, 16];
      const got = h.readRowsIndexed(idx);
      idx.forEach((r, j) => {
        for (let k = 0; k < rowSize; k += 17) assert.equal(got[j * rowSize + k], r * 1000 + k, `slot ${j} row ${r}`);
      });
      const out = new Float32Array(2 * rowSize);
      assert.equal(h.readRowsIndexed([9, 1], out), out);
      assert.equal(out[0], 9000);
      assert.equal(out[rowSize], 1000);
      assertThrowsWith(() => h.readRows(48, 51), [file, 'rows', '[0, 50]', '[48, 51)']);
      assertThrowsWith(() => h.readRowsIndexed([1, 50]), [file, 'row index', '50']);
    } finally {
      h.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('expectFeatures reports shape and img_dim mismatches', () => {
  const h = openNpy(path.join(FIX, 'v1_f4.npy'));
  try {
    assertThrowsWith(
      () => expectFeatures(h, { regions: 36, dim: 2048 }),
      [h.path, 'shape', '(N, 36, 2048)', '(2, 3, 4)'],
    );
  } finally {
    h.close();
  }
  const f = openNpy(path.join(FIX, 'feat_2x36x8.npy'));
  try {
    expectFeatures(f, { regions: 36, dim: 8 });
    assertThrowsWith(
      () => expectFeatures(f, { regions: 36, dim: 2048 }),
      [f.path, 'img_dim', 'expected 2048', 'found 8'],
    );
  } finally {
    f.close();
  }
});

test('writer checks the row count and leaves no file behind on failure', () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'short.npy');
    const w = createNpyWriter(file, [4, 2]);
    w.append(new Float32Array(4));
    assertThrowsWith(() => w.close(), [file, 'rows written', 'expected 4', 'found 2']);
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(fs.readdirSync(dir), []);
    const w2 = createNpyWriter(file, [2, 3]);
    assertThrowsWith(() => w2.append(new Float32Array(4)), [file, 'multiple of 3', 'found 4']);
    w2.append(new Float32Array(6));
    assertThrowsWith(() => w2.append(new Float32Array(3)), [file, 'at most 2 rows', 'found 3']);
    w2.close();
    assert.deepEqual(readNpy(file).shape, [2, 3]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('reading rows of a ~2 GB file keeps RSS under 300 MB (positioned reads, nothing mapped)', () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'big_ims.npy');
    const n = 7000;
    const rowSize = 36 * 2048; // 288 KiB per image
    // numpy's header, then the file is extended sparsely to its full size and a few rows are written at their
    // offsets: no 2 GB of real writes.
    const header = encodeNpyHeader([n, 36, 2048]);
    const dataOffset = header.length;
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, header, 0, dataOffset, 0);
    fs.ftruncateSync(fd, dataOffset + n * rowSize * 4);
    const marked = [0, 3001, 3050, 6999];
    for (const r of marked) {
      const row = Float32Array.from({ length: rowSize }, (_, k) => r + k / rowSize);
      fs.writeSync(fd, new Uint8Array(row.buffer), 0, row.byteLength, dataOffset + r * rowSize * 4);
    }
    fs.closeSync(fd);
    assert.ok(fs.statSync(file).size > 2e9);

    const h = openNpy(file);
    try {
      assert.deepEqual([...h.shape], [n, 36, 2048]);
      expectFeatures(h, { regions: 36, dim: 2048 });
      const rows = h.readRows(3000, 3100);
      assert.equal(rows[0], 0);
      assert.equal(rows[1 * rowSize], 3001);
      assert.equal(rows[1 * rowSize + 5], Math.fround(3001 + 5 / rowSize));
      assert.equal(rows[50 * rowSize + rowSize - 1], Math.fround(3050 + (rowSize - 1) / rowSize));
      const idx = h.readRowsIndexed([6999, 0, 3050]);
      assert.equal(idx[0], 6999);
      assert.equal(idx[rowSize], 0);
      assert.equal(idx[2 * rowSize], 3050);
      // Stream the whole file in batches of 128 images through one reused buffer.
      const buf = new Float32Array(128 * rowSize);
      let peak = process.memoryUsage().rss;
      let checked = 0;
      for (let s = 0; s < n; s += 128) {
        const e = Math.min(n, s + 128);
        h.readRows(s, e, buf);
        for (const r of marked)
          if (r >= s && r < e) {
            assert.equal(buf[(r - s) * rowSize], r);
            checked++;
          }
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      assert.equal(checked, marked.length);
      assert.ok(peak < 300 * 2 ** 20, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MB`);

      console.log(`# 2 GB npy: peak RSS ${(peak / 2 ** 20).toFixed(0)} MB while reading all ${n} rows`);
    } finally {
      h.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
