// .npy reader: rows (one index of the first axis) are fetched by byte offset with positioned reads, never the
// whole file. Every read returns float32: <f2 is widened, <f8 is narrowed (with one warning per file), <i4/<i8
// are converted.
import fs from 'node:fs';
import { fileError, VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { firstNonFinite, nonFiniteName } from '../util/finite.js';
import { halfTableF32, LITTLE_ENDIAN_HOST } from './binary.js';
import { DTYPE_BYTES, fail, product, readHeader, shapeText, type NpyDtype, type NpyHeader } from './npyHeader.js';

export type { NpyDtype, NpyHeader } from './npyHeader.js';

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
  /** Throw naming the file and row if `values` (rows `rows[0]`, `rows[1]`, ... of this file) hold a NaN or Inf. */
  checkRows(values: Float32Array, rows: ArrayLike<number>): void;
  close(): void;
}

const F16 = halfTableF32();

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
      for (let i = 0; i < count; i++) out[outOffset + i] = F16[src[2 * i] | (src[2 * i + 1] << 8)]!;
      return;
    case '<f8':
      for (let i = 0; i < count; i++) out[outOffset + i] = dv.getFloat64(8 * i, true);
      return;
    case '<i4':
      for (let i = 0; i < count; i++) out[outOffset + i] = dv.getInt32(4 * i, true);
      return;
    case '<i8':
      for (let i = 0; i < count; i++)
        out[outOffset + i] = dv.getInt32(8 * i + 4, true) * 4294967296 + dv.getUint32(8 * i, true);
      return;
  }
}

/** Read exactly `length` bytes at `position` into buf[offset...]; a short read means the file was truncated. */
function preadFully(file: string, fd: number, buf: Uint8Array, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, offset + done, length - done, position + done);
    } catch (e) {
      throw fileError(file, e);
    }
    if (n === 0)
      fail(
        file,
        'data',
        `${length} bytes at offset ${position}`,
        `end of file after ${done} bytes (the file is truncated)`,
      );
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

  constructor(
    file: string,
    fd: number,
    h: NpyHeader,
    private readonly checkFinite: boolean,
  ) {
    this.path = file;
    this.fd = fd;
    this.version = h.version;
    this.dtype = h.dtype;
    this.shape = Object.freeze([...h.shape]);
    this.nRows = h.shape.length === 0 ? 1 : h.shape[0];
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

  /** Copy rows [start, end) into out at element offset outOffset, checking that every value is finite. */
  private readInto(start: number, end: number, out: Float32Array, outOffset: number): void {
    const fd = this.open;
    const rowBytes = this.rowSize * this.itemBytes;
    const pos = this.dataOffset + start * rowBytes;
    const total = (end - start) * rowBytes;
    if (total === 0) return;
    if (this.dtype === '<f4' && LITTLE_ENDIAN_HOST) {
      const bytes = new Uint8Array(out.buffer, out.byteOffset + outOffset * 4, total);
      preadFully(this.path, fd, bytes, 0, total, pos);
    } else {
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
    if (this.checkFinite) {
      const count = (end - start) * this.rowSize;
      const bad = firstNonFinite(out, outOffset, outOffset + count);
      if (bad >= 0) this.nonFinite(start, bad - outOffset, out[bad]);
    }
  }

  checkRows(values: Float32Array, rows: ArrayLike<number>): void {
    if (!this.checkFinite) return;
    const bad = firstNonFinite(values, 0, rows.length * this.rowSize);
    if (bad < 0) return;
    const k = Math.floor(bad / this.rowSize);
    this.nonFinite(rows[k], bad - k * this.rowSize, values[bad]);
  }

  /** The error for a NaN/Inf at element `k` counted from the start of row `start`. */
  private nonFinite(start: number, k: number, value: number): never {
    const row = start + Math.floor(k / this.rowSize);
    let rest = k % this.rowSize;
    const index = [row];
    for (let d = 1; d < this.shape.length; d++) {
      const inner = product(this.shape.slice(d + 1));
      index.push(Math.floor(rest / inner));
      rest %= inner;
    }
    const how =
      this.dtype === '<f8' ? ' (after narrowing float64 to float32)' : this.dtype === '<f2' ? ' (float16)' : '';
    fail(this.path, `row ${row}`, 'finite numbers', `${nonFiniteName(value)}${how} at index (${index.join(', ')})`);
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
      const r = indices[k];
      if (!Number.isInteger(r) || r < 0 || r >= this.nRows)
        fail(this.path, 'row index', `an integer in [0, ${this.nRows})`, String(r));
    }
    order.sort((a, b) => indices[a] - indices[b]);
    const rs = this.rowSize;
    // Walk the sorted order; each run of consecutive distinct rows becomes one positioned read into a scratch
    // block, then rows are scattered to their requested slots (duplicates are copied).
    let k = 0;
    let scratch: Float32Array | null = null;
    while (k < n) {
      const first = indices[order[k]];
      let last = first;
      let j = k + 1;
      while (j < n) {
        const r = indices[order[j]];
        if (r === last || (r === last + 1 && (r - first + 1) * rs <= 4 << 20)) {
          last = r;
          j++;
        } else break;
      }
      const runRows = last - first + 1;
      if (runRows === 1 && j === k + 1) {
        this.readInto(first, first + 1, o, order[k] * rs);
      } else {
        if (!scratch || scratch.length < runRows * rs) scratch = new Float32Array(runRows * rs);
        this.readInto(first, last + 1, scratch, 0);
        for (let t = k; t < j; t++) {
          const r = indices[order[t]] - first;
          o.set(scratch.subarray(r * rs, (r + 1) * rs), order[t] * rs);
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

/** How a dtype other than float32 is read, said once per file. */
const CONVERSION_NOTES: Partial<Record<NpyDtype, string>> = {
  '<f8': 'float64 data is narrowed to float32 when read',
  '<i4': 'int32 data is converted to float32 when read (exact up to 2^24)',
  '<i8': 'int64 data is converted to float32 when read (exact up to 2^24)',
};

export interface OpenNpyOptions {
  /** No conversion note (header inspection). */
  quiet?: boolean;
  /** Let NaN and Inf through (score matrices, whose check names the image and caption instead). */
  allowNonFinite?: boolean;
}

/**
 * Open a .npy file and validate its header and its size, which must be exactly what the header's shape and descr
 * say; rows are read lazily, and every value read is checked to be finite unless `allowNonFinite`.
 */
export function openNpy(file: string, opts: OpenNpyOptions = {}): NpyHandle {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw fileError(file, e, 'open');
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) fail(file, 'file', 'a regular file', st.isDirectory() ? 'a directory' : 'a special file');
    const size = st.size;
    const h = readHeader(file, fd, size);
    const nbytes = product(h.shape) * DTYPE_BYTES[h.dtype];
    const what = `${nbytes} bytes of data for shape ${shapeText(h.shape)} of ${h.dtype}`;
    if (!Number.isSafeInteger(nbytes)) fail(file, 'shape', 'a size that fits a file', shapeText(h.shape));
    const have = size - h.dataOffset;
    if (have < nbytes) fail(file, 'data', what, `${have} bytes (the file is truncated, or the header is wrong)`);
    if (have > nbytes)
      fail(
        file,
        'data',
        what,
        `${have} bytes, ${have - nbytes} more (bytes inserted or appended, or the header is wrong)`,
      );
    const note = CONVERSION_NOTES[h.dtype];
    if (note && !opts.quiet) log().warn({ file }, `${file}: ${note}`);
    return new NpyReader(file, fd, h, !opts.allowNonFinite);
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
export function readNpy(
  file: string,
  opts: OpenNpyOptions = {},
): { shape: number[]; dtype: NpyDtype; data: Float32Array } {
  const h = openNpy(file, opts);
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
  // Region features are floats: integer data is another array (and '<i4' is what damage to '<f4' looks like).
  if (h.dtype === '<i4' || h.dtype === '<i8')
    fail(
      h.path,
      'descr',
      "float features ('<f4', '<f2' or '<f8')",
      `'${h.dtype}' (integers); if meant, save arr.astype('<f4')`,
    );
  if (h.shape.length !== 3 || h.shape[1] !== regions) {
    fail(h.path, 'shape', `region features of shape ${want}`, shapeText(h.shape));
  }
  if (opts.dim !== undefined && h.shape[2] !== opts.dim) {
    fail(h.path, 'feature dim (img_dim)', `${opts.dim} (shape ${want})`, `${h.shape[2]} (shape ${shapeText(h.shape)})`);
  }
}
