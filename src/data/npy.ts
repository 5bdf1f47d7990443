// NumPy .npy files: a reader that fetches rows by byte offset (never the whole file) and a streaming writer.
//
// Format (numpy.lib.format): magic "\x93NUMPY", major, minor, header length (uint16 LE in 1.0, uint32 LE in
// 2.0 and 3.0), then a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with
// spaces and ended by '\n' (latin-1 in 1.0/2.0, UTF-8 in 3.0), then the raw data in C order.
//
// Row = one index of the first axis. Every read returns float32: <f2 is widened, <f8 is narrowed (with one
// warning per file), <i4/<i8 are converted.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { badInput, fileError, VslError } from '../util/errors.js';
import { log } from '../util/log.js';

export type NpyDtype = '<f4' | '<f2' | '<f8' | '<i4' | '<i8';

const DTYPE_BYTES: Record<NpyDtype, number> = { '<f4': 4, '<f2': 2, '<f8': 8, '<i4': 4, '<i8': 8 };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** A parsed .npy header. */
export interface NpyHeader {
  version: '1.0' | '2.0' | '3.0';
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the first data byte. */
  dataOffset: number;
}

/** An open .npy file; rows are read on demand with positioned reads. */
export interface NpyHandle {
  readonly path: string;
  readonly version: NpyHeader['version'];
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  /** Number of rows (shape[0]; 1 for a 0-d array). */
  readonly nRows: number;
  /** Elements in one row (product of shape[1:]). */
  readonly rowSize: number;
  /** Byte offset of the first data byte. */
  readonly dataOffset: number;
  /** Rows start..end-1 as float32 (row-major). `out`, when given, must hold at least (end-start)*rowSize. */
  readRows(start: number, end: number, out?: Float32Array): Float32Array;
  /** The given rows, in the given order (duplicates allowed); reads are sorted and merged internally. */
  readRowsIndexed(indices: ArrayLike<number>, out?: Float32Array): Float32Array;
  close(): void;
}

function fail(file: string, field: string, expected: string, found: string): never {
  throw badInput(file, field, expected, found);
}

function shapeText(shape: readonly number[]): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}

function product(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// Header parsing

/** Parse the Python-literal header dict that numpy writes (only the subset numpy produces). */
function parseHeaderDict(file: string, text: string): { descr: unknown; fortran: unknown; shape: unknown } {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  const bad = (what: string): never =>
    fail(file, 'header', "a Python dict like {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", `${what} in ${JSON.stringify(text.trim())}`);
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
function readHeader(file: string, fd: number, fileSize: number): NpyHeader {
  const pre = Buffer.alloc(12);
  const got = fs.readSync(fd, pre, 0, 12, 0);
  if (got < 10 || !pre.subarray(0, 6).equals(MAGIC)) {
    const found = got === 0 ? 'an empty file' : `bytes ${JSON.stringify(pre.subarray(0, Math.min(got, 6)).toString('latin1'))}`;
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
    fail(file, 'fortran_order', 'False (C order)', h.fortran === true ? 'True (Fortran order); save with np.ascontiguousarray' : String(h.fortran));
  }
  const descr = h.descr;
  if (typeof descr !== 'string') fail(file, 'descr', "one of '<f4', '<f2', '<f8', '<i4', '<i8'", describeDescr(descr));
  let d = descr as string;
  if (d[0] === '>' || (d[0] === '!' && d.length > 2)) {
    fail(file, 'descr', "a little-endian dtype ('<f4', '<f2', '<f8', '<i4', '<i8')", `big-endian '${d}'; convert with arr.astype('<f4')`);
  }
  if (d[0] === '=' && LITTLE_ENDIAN_HOST) d = '<' + d.slice(1);
  if (!(d in DTYPE_BYTES)) fail(file, 'descr', "one of '<f4', '<f2', '<f8', '<i4', '<i8'", `'${d}'`);
  const shapeVal = h.shape as { tuple?: unknown[] } | null;
  if (!shapeVal || !Array.isArray(shapeVal.tuple)) fail(file, 'shape', 'a tuple of integers', JSON.stringify(h.shape));
  const shape = shapeVal!.tuple!.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) fail(file, 'shape', 'a tuple of non-negative integers', JSON.stringify(shapeVal!.tuple));
    return x as number;
  });
  return { version, dtype: d as NpyDtype, shape, dataOffset: start + headerLen };
}

// ---------------------------------------------------------------------------------------------------------
// Conversions

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

/** float32 value -> IEEE half bits, round to nearest even (for the writer). */
export function toHalfBits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let hm = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && hm & 1)) hm++;
    return sign | hm;
  }
  let hm = mant >>> 13;
  const rem = mant & 0x1fff;
  let he = e;
  if (rem > 0x1000 || (rem === 0x1000 && hm & 1)) {
    hm++;
    if (hm === 0x400) {
      hm = 0;
      he++;
      if (he >= 31) return sign | 0x7c00;
    }
  }
  return sign | (he << 10) | hm;
}

/** Convert `count` elements of raw little-endian bytes into float32 at out[outOffset...]. */
function convert(dtype: NpyDtype, src: Buffer, count: number, out: Float32Array, outOffset: number): void {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (dtype) {
    case '<f4':
      if (LITTLE_ENDIAN_HOST && src.byteOffset % 4 === 0) {
        out.set(new Float32Array(src.buffer, src.byteOffset, count), outOffset);
      } else for (let i = 0; i < count; i++) out[outOffset + i] = dv.getFloat32(4 * i, true);
      return;
    case '<f2':
      for (let i = 0; i < count; i++) out[outOffset + i] = F16_TABLE[src[2 * i]! | (src[2 * i + 1]! << 8)]!;
      return;
    case '<f8':
      for (let i = 0; i < count; i++) out[outOffset + i] = dv.getFloat64(8 * i, true);
      return;
    case '<i4':
      for (let i = 0; i < count; i++) out[outOffset + i] = dv.getInt32(4 * i, true);
      return;
    case '<i8':
      for (let i = 0; i < count; i++) out[outOffset + i] = dv.getInt32(8 * i + 4, true) * 4294967296 + dv.getUint32(8 * i, true);
      return;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reader

/** Read exactly `length` bytes at `position` into buf[offset...]; a short read means the file was truncated. */
function preadFully(file: string, fd: number, buf: Uint8Array, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, offset + done, length - done, position + done);
    if (n === 0) fail(file, 'data', `${length} bytes at offset ${position}`, `end of file after ${done} bytes (the file is truncated)`);
    done += n;
  }
}

const CHUNK_BYTES = 8 << 20; // staging buffer size for non-f4 dtypes

class NpyReader implements NpyHandle {
  readonly path: string;
  readonly version: NpyHeader['version'];
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  readonly nRows: number;
  readonly rowSize: number;
  readonly dataOffset: number;
  private fd: number | null;
  private readonly itemBytes: number;
  private staging: Buffer | null = null;

  constructor(file: string, fd: number, h: NpyHeader) {
    this.path = file;
    this.fd = fd;
    this.version = h.version;
    this.dtype = h.dtype;
    this.shape = Object.freeze([...h.shape]);
    this.nRows = h.shape.length === 0 ? 1 : h.shape[0]!;
    this.rowSize = product(h.shape.slice(1));
    this.dataOffset = h.dataOffset;
    this.itemBytes = DTYPE_BYTES[h.dtype];
  }

  private get open(): number {
    if (this.fd === null) throw new VslError(`${this.path}: read after close`);
    return this.fd;
  }

  private checkRange(start: number, end: number): void {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > this.nRows) {
      fail(this.path, 'rows', `a range within [0, ${this.nRows}]`, `[${start}, ${end})`);
    }
  }

  private outFor(nRows: number, out?: Float32Array): Float32Array {
    const need = nRows * this.rowSize;
    if (!out) return new Float32Array(need);
    if (out.length < need) throw new VslError(`${this.path}: output buffer holds ${out.length} floats, ${need} needed`);
    return out;
  }

  /** Copy rows [start, end) into out at element offset outOffset. */
  private readInto(start: number, end: number, out: Float32Array, outOffset: number): void {
    const fd = this.open;
    const rowBytes = this.rowSize * this.itemBytes;
    const pos = this.dataOffset + start * rowBytes;
    const total = (end - start) * rowBytes;
    if (total === 0) return;
    if (this.dtype === '<f4' && LITTLE_ENDIAN_HOST) {
      const bytes = new Uint8Array(out.buffer, out.byteOffset + outOffset * 4, total);
      preadFully(this.path, fd, bytes, 0, total, pos);
      return;
    }
    // Other dtypes: stage in bounded chunks of whole elements.
    const chunk = Math.max(this.itemBytes, CHUNK_BYTES - (CHUNK_BYTES % this.itemBytes));
    this.staging ??= Buffer.allocUnsafe(chunk);
    let done = 0;
    while (done < total) {
      const n = Math.min(chunk, total - done);
      preadFully(this.path, fd, this.staging, 0, n, pos + done);
      convert(this.dtype, this.staging, n / this.itemBytes, out, outOffset + done / this.itemBytes);
      done += n;
    }
  }

  readRows(start: number, end: number, out?: Float32Array): Float32Array {
    this.checkRange(start, end);
    const o = this.outFor(end - start, out);
    this.readInto(start, end, o, 0);
    return o;
  }

  readRowsIndexed(indices: ArrayLike<number>, out?: Float32Array): Float32Array {
    const n = indices.length;
    const o = this.outFor(n, out);
    const order = Array.from({ length: n }, (_, k) => k);
    for (let k = 0; k < n; k++) {
      const r = indices[k]!;
      if (!Number.isInteger(r) || r < 0 || r >= this.nRows) fail(this.path, 'row index', `an integer in [0, ${this.nRows})`, String(r));
    }
    order.sort((a, b) => indices[a]! - indices[b]!);
    const rs = this.rowSize;
    // Walk the sorted order; each run of consecutive distinct rows becomes one positioned read into a scratch
    // block, then rows are scattered to their requested slots (duplicates are copied).
    let k = 0;
    let scratch: Float32Array | null = null;
    while (k < n) {
      const first = indices[order[k]!]!;
      let last = first;
      let j = k + 1;
      while (j < n) {
        const r = indices[order[j]!]!;
        if (r === last || (r === last + 1 && (r - first + 1) * rs <= (4 << 20))) {
          last = r;
          j++;
        } else break;
      }
      const runRows = last - first + 1;
      if (runRows === 1 && j === k + 1) {
        this.readInto(first, first + 1, o, order[k]! * rs);
      } else {
        if (!scratch || scratch.length < runRows * rs) scratch = new Float32Array(runRows * rs);
        this.readInto(first, last + 1, scratch, 0);
        for (let t = k; t < j; t++) {
          const r = indices[order[t]!]! - first;
          o.set(scratch.subarray(r * rs, (r + 1) * rs), order[t]! * rs);
        }
      }
      k = j;
    }
    return o;
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
      this.staging = null;
    }
  }
}

/** Open a .npy file and validate its header and size; rows are read lazily. */
export function openNpy(file: string, opts: { quiet?: boolean } = {}): NpyHandle {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw fileError(file, e, 'open');
  }
  try {
    const size = fs.fstatSync(fd).size;
    const h = readHeader(file, fd, size);
    const nbytes = product(h.shape) * DTYPE_BYTES[h.dtype];
    const have = size - h.dataOffset;
    if (have < nbytes) {
      fail(file, 'data', `${nbytes} bytes for shape ${shapeText(h.shape)} of ${h.dtype}`, `${have} bytes (the file is truncated)`);
    }
    if (h.dtype === '<f8' && !opts.quiet) log().warn({ file }, `${file}: float64 data is narrowed to float32 when read`);
    return new NpyReader(file, fd, h);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Header only (no data access), for inspection. */
export function readNpyHeader(file: string): NpyHeader {
  const h = openNpy(file, { quiet: true });
  try {
    return { version: h.version, dtype: h.dtype, shape: [...h.shape], dataOffset: h.dataOffset };
  } finally {
    h.close();
  }
}

/** Read a whole (small) .npy file as float32. */
export function readNpy(file: string): { shape: number[]; dtype: NpyDtype; data: Float32Array } {
  const h = openNpy(file);
  try {
    return { shape: [...h.shape], dtype: h.dtype, data: h.readRows(0, h.nRows) };
  } finally {
    h.close();
  }
}

/** Check that a handle holds region features (N, regions, dim); throws naming the file, expected and found. */
export function expectFeatures(h: NpyHandle, opts: { regions?: number; dim?: number } = {}): void {
  const regions = opts.regions ?? 36;
  const want = `(N, ${regions}, ${opts.dim ?? 'D'})`;
  if (h.shape.length !== 3 || h.shape[1] !== regions) {
    fail(h.path, 'shape', `region features of shape ${want}`, shapeText(h.shape));
  }
  if (opts.dim !== undefined && h.shape[2] !== opts.dim) {
    fail(h.path, 'feature dim (img_dim)', `${opts.dim} (shape ${want})`, `${h.shape[2]} (shape ${shapeText(h.shape)})`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writer

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

function encode(dtype: NpyDtype, src: ArrayLike<number>, from: number, count: number): Buffer {
  const b = Buffer.allocUnsafe(count * DTYPE_BYTES[dtype]);
  for (let i = 0; i < count; i++) {
    const v = src[from + i]!;
    switch (dtype) {
      case '<f4':
        b.writeFloatLE(v, 4 * i);
        break;
      case '<f8':
        b.writeDoubleLE(v, 8 * i);
        break;
      case '<f2':
        b.writeUInt16LE(toHalfBits(v), 2 * i);
        break;
      case '<i4':
        b.writeInt32LE(Math.trunc(v), 4 * i);
        break;
      case '<i8':
        b.writeBigInt64LE(BigInt(Math.trunc(v)), 8 * i);
        break;
    }
  }
  return b;
}

/** A streaming .npy writer: the header is written first, rows are appended, close() checks the row count. */
export interface NpyWriter {
  readonly path: string;
  readonly rowsWritten: number;
  /** Append whole rows (length must be a multiple of the row size). */
  append(rows: ArrayLike<number>): void;
  /** Check that shape[0] rows were written, then move the file into place. */
  close(): void;
  /** Give up: remove the partial file. */
  abort(): void;
}

/**
 * Create a .npy file of the given shape, written row by row with bounded memory. The data goes to a temporary
 * file beside `file` that is renamed on a successful close(), so an interrupted write leaves no valid-looking file.
 */
export function createNpyWriter(file: string, shape: readonly number[], dtype: NpyDtype = '<f4', opts: { version?: 1 | 2 | 3 } = {}): NpyWriter {
  if (!(dtype in DTYPE_BYTES)) throw new VslError(`${file}: cannot write dtype ${dtype}`);
  if (shape.length === 0 || shape.some((x) => !Number.isSafeInteger(x) || x < 0)) {
    throw new VslError(`${file}: invalid shape ${JSON.stringify(shape)} for a .npy file`);
  }
  const rowSize = product(shape.slice(1));
  const nRows = shape[0]!;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}`);
  const fd = fs.openSync(tmp, 'w');
  let pos = 0;
  let rows = 0;
  let closed = false;
  const writeAll = (b: Uint8Array) => {
    let off = 0;
    while (off < b.length) {
      const n = fs.writeSync(fd, b, off, b.length - off, pos);
      off += n;
      pos += n;
    }
  };
  try {
    writeAll(encodeNpyHeader(shape, dtype, opts.version));
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  const w: NpyWriter = {
    path: file,
    get rowsWritten() {
      return rows;
    },
    append(data: ArrayLike<number>) {
      if (closed) throw new VslError(`${file}: append after close`);
      if (rowSize === 0 ? data.length !== 0 : data.length % rowSize !== 0) {
        throw new VslError(`${file}: append: expected a multiple of ${rowSize} values (whole rows), found ${data.length}`);
      }
      const k = rowSize === 0 ? 0 : data.length / rowSize;
      if (rows + k > nRows) {
        throw new VslError(`${file}: append: expected at most ${nRows} rows in total, found ${rows + k}`);
      }
      if (dtype === '<f4' && LITTLE_ENDIAN_HOST && data instanceof Float32Array) {
        writeAll(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } else {
        const step = Math.max(1, Math.floor((1 << 20) / Math.max(1, rowSize)) * Math.max(1, rowSize));
        for (let off = 0; off < data.length; off += step) writeAll(encode(dtype, data, off, Math.min(step, data.length - off)));
      }
      rows += k;
    },
    close() {
      if (closed) return;
      closed = true;
      fs.closeSync(fd);
      if (rows !== nRows) {
        fs.rmSync(tmp, { force: true });
        throw new VslError(`${file}: rows written: expected ${nRows} (shape ${shapeText(shape)}), found ${rows}`);
      }
      fs.renameSync(tmp, file);
    },
    abort() {
      if (closed) return;
      closed = true;
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
    },
  };
  return w;
}

/** Write a small array in one go. */
export function writeNpy(file: string, data: ArrayLike<number>, shape: readonly number[], dtype: NpyDtype = '<f4', opts: { version?: 1 | 2 | 3 } = {}): void {
  if (product(shape) !== data.length) {
    throw new VslError(`${file}: data length ${data.length} does not match shape ${shapeText(shape)}`);
  }
  const w = createNpyWriter(file, shape, dtype, opts);
  try {
    w.append(data);
  } catch (e) {
    w.abort();
    throw e;
  }
  w.close();
}
