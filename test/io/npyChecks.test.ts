// What the .npy reader refuses beyond the fixtures: a size other than the header's, headers numpy would refuse,
// NaN/Inf as rows are read, integer region features.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VslError } from '../../src/util/errors.js';
import { encodeNpyHeader, MAX_HEADER_BYTES } from '../../src/io/npyHeader.js';
import { expectFeatures, openNpy, readNpy } from '../../src/io/npyRead.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-npychecks-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A version 1.0 file from a header dict text (padded as numpy pads) and raw data. */
function npy(dict: string, data: Uint8Array, opts: { pad?: string; hlenDelta?: number } = {}): string {
  const pad = opts.pad ?? ' ';
  let body = dict;
  while ((10 + body.length + 1) % 64 !== 0) body += pad;
  body += '\n';
  const h = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(h);
  h.writeUInt16LE(body.length + (opts.hlenDelta ?? 0), 8);
  const f = path.join(dir, `${n++}.npy`);
  fs.writeFileSync(f, Buffer.concat([h, Buffer.from(body, 'latin1'), data]));
  return f;
}

const F4 = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);
const DICT = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

function refuses(f: string, parts: string[]): void {
  assert.throws(
    () => readNpy(f),
    (e: unknown) => {
      assert.ok(e instanceof VslError, String(e));
      assert.ok(e.message.startsWith(`${f}: `), e.message);
      for (const p of parts)
        assert.ok(e.message.includes(p), `${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
      // eslint-disable-next-line no-control-regex -- no control character may reach the message
      assert.doesNotMatch(e.message, /[\x00-\x1f]/);
      return true;
    },
  );
}

test('a well-formed file reads, with tab padding or no final newline as numpy accepts', () => {
  assert.deepEqual([...readNpy(npy(DICT, F4([1, 2, 3, 4, 5, 6]))).data], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...readNpy(npy(DICT, F4([1, 2, 3, 4, 5, 6]), { pad: '\t' })).data], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...readNpy(npy(DICT + '  ', F4([1, 2, 3, 4, 5, 6]))).data], [1, 2, 3, 4, 5, 6]);
});

test('the data must be exactly the size the header says: longer and shorter are errors', () => {
  refuses(npy(DICT, F4([1, 2, 3, 4, 5, 6, 7])), ['data: expected 24 bytes', 'found 28 bytes, 4 more']);
  refuses(npy(DICT, F4([1, 2, 3, 4, 5])), ['data: expected 24 bytes', 'found 20 bytes (the file is truncated']);
  refuses(npy(DICT.replace('<f4', '<f2'), F4([1, 2, 3, 4, 5, 6])), ['of <f2', 'found 24 bytes, 12 more']);
  refuses(npy(DICT.replace('<f4', '<f8'), F4([1, 2, 3, 4, 5, 6])), ['48 bytes of data', 'found 24 bytes']);
});

test('a header length off by one either way is refused', () => {
  // +1: the first data byte joins the header; -1: the newline joins the data
  refuses(npy(DICT, F4([0, 2, 3, 4, 5, 6]), { hlenDelta: 1 }), ['header']);
  refuses(npy(DICT, F4([1.1, 2, 3, 4, 5, 6]), { hlenDelta: 1 }), ['header: expected', 'after the closing brace']);
  refuses(npy(DICT, F4([1, 2, 3, 4, 5, 6]), { hlenDelta: -1 }), ['data: expected 24 bytes', '1 more']);
});

test('headers numpy refuses are refused: other keys, NUL bytes, text after the dict, lists, non-bool order', () => {
  const d = F4([1, 2, 3, 4, 5, 6]);
  refuses(npy(DICT.replace('}', "'x': 1, }"), d), ["header keys: expected exactly 'descr', 'fortran_order', 'shape'"]);
  refuses(npy(DICT.replace("'fortran_order': False, ", ''), d), ['header keys']);
  refuses(npy(DICT, d, { pad: '\0' }), ['header: expected text without NUL bytes']);
  refuses(npy(DICT + ' x', d), ['found "x ', 'after the closing brace']);
  refuses(npy(DICT.replace('(2, 3)', '[2, 3]'), d), ['shape: expected a tuple of integers, found a list [2, 3]']);
  refuses(npy(DICT.replace('False', '0'), d), ['fortran_order: expected False (C order), found 0']);
  refuses(npy(DICT.replace('(2, 3)', '(2, -3)'), d), ['shape: expected a tuple of non-negative integers']);
  refuses(npy(DICT.replace("'<f4'", "'toString'"), d), ["descr: expected one of '<f4'"]);
  const big = path.join(dir, 'big.npy');
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0, 0, 0]);
  pre.writeUInt32LE(MAX_HEADER_BYTES + 1, 8);
  fs.writeFileSync(big, Buffer.concat([pre, Buffer.alloc(MAX_HEADER_BYTES + 64, 0x20)]));
  refuses(big, ["header length: expected at most 10000 bytes (numpy's limit), found 10001"]);
});

test('an error quotes at most a short escaped excerpt of the bytes', () => {
  const f = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + '\x01'.repeat(300), F4([1]));
  refuses(f, ['\\x01']);
  assert.throws(
    () => readNpy(f),
    (e: Error) => {
      assert.ok(e.message.length < 400, e.message);
      return true;
    },
  );
});

test('NaN and Inf are refused as rows are read, naming the row and the index', () => {
  const data = Float32Array.from({ length: 4 * 2 * 3 }, (_, k) => k);
  data[2 * 6 + 4] = NaN; // row 2, index (2, 1, 1)
  const f = path.join(dir, 'nan.npy');
  fs.writeFileSync(f, Buffer.concat([encodeNpyHeader([4, 2, 3]), new Uint8Array(data.buffer)]));
  const h = openNpy(f);
  try {
    assert.deepEqual([...h.readRows(0, 2)].slice(0, 3), [0, 1, 2]); // rows before the bad one read
    assert.throws(() => h.readRows(1, 4), /nan\.npy: row 2: expected finite numbers, found NaN at index \(2, 1, 1\)/);
    assert.throws(() => h.readRowsIndexed([3, 2, 0]), /row 2: expected finite numbers/);
  } finally {
    h.close();
  }
  data[2 * 6 + 4] = 0;
  data[3 * 6] = Infinity;
  fs.writeFileSync(f, Buffer.concat([encodeNpyHeader([4, 2, 3]), new Uint8Array(data.buffer)]));
  assert.throws(() => readNpy(f), /row 3: expected finite numbers, found Infinity at index \(3, 0, 0\)/);
  assert.ok(Number.isFinite(readNpy(f, { allowNonFinite: true }).data[0]));
  // rows read past the reader (training reads batches asynchronously) are checked by checkRows
  const h2 = openNpy(f);
  try {
    const rows = new Float32Array(2 * 6);
    rows[6 + 5] = NaN;
    assert.throws(() => h2.checkRows(rows, [0, 2]), /row 2: expected finite numbers, found NaN at index \(2, 1, 2\)/);
    assert.doesNotThrow(() => h2.checkRows(new Float32Array(12), [0, 2]));
  } finally {
    h2.close();
  }
  // float16 and float64 too (a float64 beyond float32's range becomes Infinity)
  const f8 = path.join(dir, 'f8.npy');
  const big = Float64Array.from([1, 2, 1e300, 4, 5, 6]);
  fs.writeFileSync(f8, Buffer.concat([encodeNpyHeader([2, 3], '<f8'), new Uint8Array(big.buffer)]));
  assert.throws(() => readNpy(f8), /row 0: expected finite numbers, found Infinity \(after narrowing float64/);
});

test('integer region features are refused (a float file whose descr became <i4 is one)', () => {
  const f = path.join(dir, 'i4.npy');
  fs.writeFileSync(f, Buffer.concat([encodeNpyHeader([1, 36, 2], '<i4'), Buffer.alloc(36 * 2 * 4)]));
  const h = openNpy(f, { quiet: true });
  try {
    assert.throws(() => expectFeatures(h, { regions: 36 }), /i4\.npy: descr: expected float features/);
  } finally {
    h.close();
  }
});
