// The .npy header (numpy.lib.format): magic "\x93NUMPY", major, minor, header length (uint16 LE in 1.0, uint32 LE
// in 2.0 and 3.0), then a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with
// spaces and ended by '\n' (latin-1 in 1.0/2.0, UTF-8 in 3.0); the raw data in C order follows.
import fs from 'node:fs';
import { badInput, quote, VslError } from '../util/errors.js';
import { LITTLE_ENDIAN_HOST } from './binary.js';

export type NpyDtype = '<f4' | '<f2' | '<f8' | '<i4' | '<i8';

export const DTYPE_BYTES: Record<NpyDtype, number> = { '<f4': 4, '<f2': 2, '<f8': 8, '<i4': 4, '<i8': 8 };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** A parsed .npy header. */
export interface NpyHeader {
  version: '1.0' | '2.0' | '3.0';
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the first data byte. */
  dataOffset: number;
}

export function fail(file: string, field: string, expected: string, found: string): never {
  throw badInput(file, field, expected, found);
}

export function shapeText(shape: readonly number[]): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}

export function product(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}

/** numpy refuses headers longer than this unless told they are trusted (numpy.lib.format, max_header_size). */
export const MAX_HEADER_BYTES = 10000;

const EXPECTED = "a Python dict like {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
const KEYS = ['descr', 'fortran_order', 'shape'];
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';

/**
 * Parse the header dict as numpy's literal_eval would, for the subset numpy writes: quoted strings, integers
 * (with Python 2's L suffix), True/False/None, tuples and lists; exactly the keys descr, fortran_order and shape;
 * nothing but whitespace around it (numpy refuses a NUL byte anywhere).
 */
function parseHeaderDict(file: string, text: string): { descr: unknown; fortran: unknown; shape: unknown } {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && isSpace(text[i])) i++;
  };
  const bad = (what: string): never =>
    fail(file, 'header', EXPECTED, `${what} at character ${i} of ${quote(text, 80)}`);
  const parseValue = (): unknown => {
    ws();
    const c = text[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      let s = '';
      while (j < n && text[j] !== c && text[j] !== '\n') {
        if (text[j] === '\\' && j + 1 < n) {
          s += text[j + 1];
          j += 2;
        } else s += text[j++];
      }
      if (j >= n || text[j] !== c) bad('an unterminated string');
      i = j + 1;
      return s;
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const items: unknown[] = [];
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          break;
        }
        items.push(parseValue());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) bad(`a malformed ${c === '(' ? 'tuple' : 'list'}`);
      }
      return c === '(' ? { tuple: items } : items;
    }
    if (c === '{') bad('a nested dict');
    const m = /^(True|False|None|-?\d+L?)(?![\w.])/.exec(text.slice(i, i + 40));
    if (!m) bad(c === undefined ? 'the end of the header' : `an unexpected character ${quote(c)}`);
    i += m![0].length;
    if (m![1] === 'True') return true;
    if (m![1] === 'False') return false;
    if (m![1] === 'None') return null;
    return Number(m![1].replace('L', ''));
  };
  ws();
  if (text[i] !== '{') bad('no opening brace');
  i++;
  const out = new Map<string, unknown>();
  for (;;) {
    ws();
    if (text[i] === '}') break;
    const key = parseValue();
    if (typeof key !== 'string') bad('a non-string key');
    ws();
    if (text[i] !== ':') bad('a missing colon');
    i++;
    out.set(key as string, parseValue());
    ws();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') bad('a missing comma');
  }
  i++;
  ws();
  if (i < n) bad(`${quote(text.slice(i), 16)} after the closing brace`);
  const keys = [...out.keys()].sort();
  if (keys.join() !== KEYS.join())
    fail(
      file,
      'header keys',
      "exactly 'descr', 'fortran_order', 'shape' (as numpy)",
      keys.map((k) => quote(k)).join(', '),
    );
  return { descr: out.get('descr'), fortran: out.get('fortran_order'), shape: out.get('shape') };
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return `'${quote(v).slice(1, -1)}'`;
  if (Array.isArray(v)) return `a list [${v.map(describeValue).join(', ')}]`.slice(0, 80);
  if (v && typeof v === 'object' && 'tuple' in v) return `(${(v.tuple as unknown[]).map(describeValue).join(', ')})`;
  return String(v);
}

/** Read and validate the header of an open file: what numpy would accept, for the dtypes vsl reads. */
export function readHeader(file: string, fd: number, fileSize: number): NpyHeader {
  const pre = Buffer.alloc(12);
  const got = fs.readSync(fd, pre, 0, 12, 0);
  if (got < 10 || !pre.subarray(0, 6).equals(MAGIC)) {
    const found = got === 0 ? 'an empty file' : `bytes ${quote(pre.subarray(0, Math.min(got, 8)))}`;
    fail(file, 'magic', 'the .npy magic "\\x93NUMPY"', found);
  }
  const major = pre[6];
  const minor = pre[7];
  if (!((major === 1 || major === 2 || major === 3) && minor === 0)) {
    fail(file, 'format version', '1.0, 2.0 or 3.0', `${major}.${minor}`);
  }
  const version: NpyHeader['version'] = `${major}.0`;
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = pre.readUInt16LE(8);
    start = 10;
  } else {
    if (got < 12) fail(file, 'header length', 'a 4-byte header length', 'the end of the file');
    headerLen = pre.readUInt32LE(8);
    start = 12;
  }
  if (headerLen > MAX_HEADER_BYTES)
    fail(file, 'header length', `at most ${MAX_HEADER_BYTES} bytes (numpy's limit)`, `${headerLen}`);
  if (start + headerLen > fileSize)
    fail(file, 'header length', `${headerLen} header bytes after the preamble`, `a file of ${fileSize} bytes`);
  const hb = Buffer.alloc(headerLen);
  fs.readSync(fd, hb, 0, headerLen, start);
  const nul = hb.indexOf(0);
  if (nul >= 0)
    fail(
      file,
      'header',
      'text without NUL bytes (numpy refuses them)',
      `a NUL at byte ${start + nul} in ${quote(hb.subarray(Math.max(0, nul - 24), nul + 8))} (is the header length off?)`,
    );
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(hb);
  } catch {
    fail(file, 'header', 'UTF-8 text (format 3.0)', `bytes that are not UTF-8: ${quote(hb, 48)}`);
  }
  const h = parseHeaderDict(file, text!);
  if (h.fortran !== false) {
    fail(
      file,
      'fortran_order',
      'False (C order)',
      h.fortran === true ? 'True (Fortran order); save with np.ascontiguousarray' : describeValue(h.fortran),
    );
  }
  const descr = h.descr;
  if (typeof descr !== 'string')
    fail(
      file,
      'descr',
      "one of '<f4', '<f2', '<f8', '<i4', '<i8'",
      Array.isArray(descr) ? `a structured dtype ${describeValue(descr).slice(7)}` : describeValue(descr),
    );
  let d = descr;
  if (d[0] === '>' || (d[0] === '!' && d.length > 2)) {
    fail(
      file,
      'descr',
      "a little-endian dtype ('<f4', '<f2', '<f8', '<i4', '<i8')",
      `big-endian ${describeValue(d)}; convert with arr.astype('<f4')`,
    );
  }
  if (d[0] === '=' && LITTLE_ENDIAN_HOST) d = '<' + d.slice(1);
  if (!Object.hasOwn(DTYPE_BYTES, d)) fail(file, 'descr', "one of '<f4', '<f2', '<f8', '<i4', '<i8'", describeValue(d));
  const shapeVal = h.shape as { tuple?: unknown[] } | null;
  if (!shapeVal || !Array.isArray(shapeVal.tuple)) fail(file, 'shape', 'a tuple of integers', describeValue(h.shape));
  const shape = shapeVal.tuple.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
      fail(file, 'shape', 'a tuple of non-negative integers', describeValue(shapeVal));
    return x;
  });
  return { version, dtype: d as NpyDtype, shape, dataOffset: start + headerLen };
}

/** The header bytes numpy would write for this shape and dtype (version 1.0 unless it does not fit). */
export function encodeNpyHeader(shape: readonly number[], dtype: NpyDtype = '<f4', version?: 1 | 2 | 3): Buffer {
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText(shape)}, }`;
  const build = (major: 1 | 2 | 3): Buffer | null => {
    const pre = major === 1 ? 10 : 12;
    const bare = pre + dict.length + 1;
    const padded = Math.ceil(bare / 64) * 64;
    const hlen = padded - pre;
    if (major === 1 && hlen > 0xffff) return null;
    const b = Buffer.alloc(padded, 0x20);
    MAGIC.copy(b, 0);
    b[6] = major;
    b[7] = 0;
    if (major === 1) b.writeUInt16LE(hlen, 8);
    else b.writeUInt32LE(hlen, 8);
    b.write(dict, pre, major === 3 ? 'utf8' : 'latin1');
    b[padded - 1] = 0x0a;
    return b;
  };
  if (version) {
    const b = build(version);
    if (!b) throw new VslError(`npy header of ${dict.length} bytes does not fit format version 1.0`);
    return b;
  }
  return build(1) ?? build(2)!;
}
