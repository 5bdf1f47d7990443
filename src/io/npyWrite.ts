// .npy writer: header first, then rows appended with bounded memory, into a temporary file renamed on close.
import fs from 'node:fs';
import { tempNameFor } from '../util/atomicFile.js';
import { fileError, VslError } from '../util/errors.js';
import { LITTLE_ENDIAN_HOST, toHalfBits } from './binary.js';
import { DTYPE_BYTES, encodeNpyHeader, product, shapeText, type NpyDtype } from './npyHeader.js';

function encode(dtype: NpyDtype, src: ArrayLike<number>, from: number, count: number): Buffer {
  const b = Buffer.allocUnsafe(count * DTYPE_BYTES[dtype]);
  for (let i = 0; i < count; i++) {
    const v = src[from + i];
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
export function createNpyWriter(
  file: string,
  shape: readonly number[],
  dtype: NpyDtype = '<f4',
  opts: { version?: 1 | 2 | 3 } = {},
): NpyWriter {
  if (!(dtype in DTYPE_BYTES)) throw new VslError(`${file}: cannot write dtype ${dtype}`);
  if (shape.length === 0 || shape.some((x) => !Number.isSafeInteger(x) || x < 0)) {
    throw new VslError(`${file}: invalid shape ${JSON.stringify(shape)} for a .npy file`);
  }
  const rowSize = product(shape.slice(1));
  const nRows = shape[0];
  const tmp = tempNameFor(file);
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (e) {
    throw fileError(file, e, 'create');
  }
  let pos = 0;
  let rows = 0;
  let closed = false;
  // A failed write (disk full, quota) gives up the file: the error names it and the cause.
  const writeAll = (b: Uint8Array) => {
    let off = 0;
    try {
      while (off < b.length) {
        const n = fs.writeSync(fd, b, off, b.length - off, pos);
        off += n;
        pos += n;
      }
    } catch (e) {
      w.abort();
      throw fileError(file, e, 'write');
    }
  };
  const w: NpyWriter = {
    path: file,
    get rowsWritten() {
      return rows;
    },
    append(data: ArrayLike<number>) {
      if (closed) throw new VslError(`${file}: append after close`);
      if (rowSize === 0 ? data.length !== 0 : data.length % rowSize !== 0) {
        throw new VslError(
          `${file}: append: expected a multiple of ${rowSize} values (whole rows), found ${data.length}`,
        );
      }
      const k = rowSize === 0 ? 0 : data.length / rowSize;
      if (rows + k > nRows) {
        throw new VslError(`${file}: append: expected at most ${nRows} rows in total, found ${rows + k}`);
      }
      if (dtype === '<f4' && LITTLE_ENDIAN_HOST && data instanceof Float32Array) {
        writeAll(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } else {
        const step = Math.max(1, Math.floor((1 << 20) / Math.max(1, rowSize)) * Math.max(1, rowSize));
        for (let off = 0; off < data.length; off += step)
          writeAll(encode(dtype, data, off, Math.min(step, data.length - off)));
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
      try {
        fs.renameSync(tmp, file);
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw fileError(file, e, 'write');
      }
    },
    abort() {
      if (closed) return;
      closed = true;
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
    },
  };
  writeAll(encodeNpyHeader(shape, dtype, opts.version));
  return w;
}

/** Write a small array in one go. */
export function writeNpy(
  file: string,
  data: ArrayLike<number>,
  shape: readonly number[],
  dtype: NpyDtype = '<f4',
  opts: { version?: 1 | 2 | 3 } = {},
): void {
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
