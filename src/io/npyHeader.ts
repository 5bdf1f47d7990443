// The .npy header (numpy.lib.format): magic "\x93NUMPY", major, minor, header length (uint16 LE in 1.0, uint32 LE
// in 2.0 and 3.0), then a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with
// spaces and ended by '\n' (latin-1 in 1.0/2.0, UTF-8 in 3.0); the raw data in C order follows.
import fs from 'node:fs';
import { badInput, VslError } from '../util/errors.js';
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

// Header parsing

/** Parse the Python-literal header dict that numpy writes (only the subset numpy produces). */
function parseHeaderDict(file: string, text: string): { descr: unknown; fortran: unknown; shape: unknown } {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  const bad = (what: string): never =>
    fail(
      file,
      'header',
      "a Python dict like {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
      `${what} in ${JSON.stringify(text.trim())}`,
    );
  const parseValue = (): unknown => {
    ws();
    const c = text[i];
    if (c === "'" || c === '"') {
      const q = c;
      let j = i + 1;
      let s = '';
      while (j < n && text[j] !== q) {
        if (text[j] === '\\' && j + 1 < n) {
          s += text[j + 1];
          j += 2;
        } else s += text[j++];
      }
      if (j >= n) bad('an unterminated string');
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
        else if (text[i] !== close) bad('a malformed tuple');
      }
      return c === '(' ? { tuple: items } : items;
    }
    if (c === '{') bad('a nested dict');
    const m = /^(True|False|None|-?\d+L?)/.exec(text.slice(i));
    if (!m) bad(`an unexpected character ${JSON.stringify(c ?? 'end of header')}`);
    i += m![0].length;
    if (m![1] === 'True') return true;
    if (m![1] === 'False') return false;
    if (m![1] === 'None') return null;
    return Number(m![1]!.replace('L', ''));
  };
  ws();
  if (text[i] !== '{') bad('no opening brace');
  i++;
  const out: Record<string, unknown> = {};
  for (;;) {
    ws();
    if (text[i] === '}') break;
    const key = parseValue();
    if (typeof key !== 'string') bad('a non-string key');
    ws();
    if (text[i] !== ':') bad('a missing colon');
    i++;
    out[key as string] = parseValue();
    ws();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') bad('a missing comma');
  }
  for (const k of ['descr', 'fortran_order', 'shape']) if (!(k in out)) bad(`no '${k}' key`);
  return { descr: out.descr, fortran: out.fortran_order, shape: out.shape };
}

function describeDescr(d: unknown): string {
  if (typeof d === 'string') return `'${d}'`;
  return `a structured dtype ${JSON.stringify(d)}`;
}

/** Read and validate the header of an open file. */
export function readHeader(file: string, fd: number, fileSize: number): NpyHeader {
  const pre = Buffer.alloc(12);
  const got = fs.readSync(fd, pre, 0, 12, 0);
  if (got < 10 || !pre.subarray(0, 6).equals(MAGIC)) {
    const found =
      got === 0 ? 'an empty file' : `bytes ${JSON.stringify(pre.subarray(0, Math.min(got, 6)).toString('latin1'))}`;
    fail(file, 'magic', 'the .npy magic "\\x93NUMPY"', found);
  }
  const major = pre[6]!;
  const minor = pre[7]!;
  if (!((major === 1 || major === 2 || major === 3) && minor === 0)) {
    fail(file, 'format version', '1.0, 2.0 or 3.0', `${major}.${minor}`);
  }
  const version = `${major}.0` as NpyHeader['version'];
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = pre.readUInt16LE(8);
    start = 10;
  } else {
    if (got < 12) fail(file, 'header', 'a 4-byte header length', 'end of file');
    headerLen = pre.readUInt32LE(8);
    start = 12;
  }
  if (start + headerLen > fileSize) {
    fail(file, 'header', `${headerLen} header bytes after the preamble`, `a file of ${fileSize} bytes`);
  }
  const hb = Buffer.alloc(headerLen);
  fs.readSync(fd, hb, 0, headerLen, start);
  const text = major === 3 ? hb.toString('utf8') : hb.toString('latin1');
  const h = parseHeaderDict(file, text);
  if (h.fortran !== false) {
    fail(
      file,
      'fortran_order',
      'False (C order)',
      h.fortran === true ? 'True (Fortran order); save with np.ascontiguousarray' : String(h.fortran),
    );
  }
  const descr = h.descr;
  if (typeof descr !== 'string') fail(file, 'descr', "one of '<f4', '<f2', '<f8', '<i4', '<i8'", describeDescr(descr));
  let d = descr as string;
  if (d[0] === '>' || (d[0] === '!' && d.length > 2)) {
    fail(
      file,
      'descr',
      "a little-endian dtype ('<f4', '<f2', '<f8', '<i4', '<i8')",
      `big-endian '${d}'; convert with arr.astype('<f4')`,
    );
  }
  if (d[0] === '=' && LITTLE_ENDIAN_HOST) d = '<' + d.slice(1);
  if (!(d in DTYPE_BYTES)) fail(file, 'descr', "one of '<f4', '<f2', '<f8', '<i4', '<i8'", `'${d}'`);
  const shapeVal = h.shape as { tuple?: unknown[] } | null;
  if (!shapeVal || !Array.isArray(shapeVal.tuple)) fail(file, 'shape', 'a tuple of integers', JSON.stringify(h.shape));
  const shape = shapeVal!.tuple!.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
      fail(file, 'shape', 'a tuple of non-negative integers', JSON.stringify(shapeVal!.tuple));
    return x as number;
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
