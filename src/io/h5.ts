// Thin helpers over h5wasm (ESM-only; `h5wasm/node` reads and writes the real filesystem).
import { crc32 } from 'node:zlib';
import h5wasm from 'h5wasm/node';
import { anyToString, badInput, systemCause, systemCode, VslError } from '../util/errors.js';

type H5Data = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | string[];

/** One array as read from HDF5: row-major data plus its shape ([] for a scalar). */
export interface NamedArray {
  shape: number[];
  data: H5Data;
}

let ready: Promise<unknown> | null = null;
export async function h5(): Promise<typeof h5wasm> {
  ready ??= h5wasm.ready;
  await ready;
  return h5wasm;
}

/** Open an HDF5 file for reading, with a clear error when it is missing or not HDF5. */
export async function openH5(path: string): Promise<InstanceType<typeof h5wasm.File>> {
  const lib = await h5();
  const fs = await import('node:fs');
  if (!fs.existsSync(path)) throw new VslError(`${path}: file not found`);
  if (fs.statSync(path).isDirectory()) throw badInput(path, 'file', 'an HDF5 file', 'a directory');
  // h5wasm's default HDF5 error handler does not throw: it prints a stack and returns file id -1.
  const mod = await h5module();
  let f: InstanceType<typeof h5wasm.File>;
  try {
    f = withH5Errors(mod, () => new lib.File(path, 'r'));
  } catch (e) {
    throw badInput(path, 'file', 'an HDF5 file', `unreadable (${h5ErrorSummary(e)})`);
  }
  if (f.file_id < 0n) throw badInput(path, 'file', 'an HDF5 file', 'unreadable');
  return f;
}

function toTyped(value: unknown, path: string, name: string): H5Data {
  if (value instanceof Float32Array || value instanceof Float64Array || value instanceof Int32Array) return value;
  if (value instanceof BigInt64Array || value instanceof Uint8Array) return value;
  if (typeof value === 'number') return new Float64Array([value]);
  if (typeof value === 'bigint') return new BigInt64Array([value]);
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw badInput(path, name, 'a float, integer or string dataset', `an unsupported value (${typeof value})`);
}

/** Read every dataset directly below `group` (or the whole file when group is '') into a map by name. */
export async function readGroup(path: string, group: string): Promise<Map<string, NamedArray>> {
  return readH5(path, (r) => {
    const g = r.get(group || '/');
    if (!(g instanceof h5wasm.Group)) throw badInput(path, group, 'an HDF5 group', 'nothing of that name');
    const out = new Map<string, NamedArray>();
    for (const k of r.at(`${group}/`, () => g.keys())) {
      const name = `${group}/${k}`;
      const d = r.get(name);
      if (d instanceof h5wasm.Dataset)
        out.set(
          k,
          r.at(name, () => ({ shape: d.shape ?? [], data: toTyped(d.value, path, name) })),
        );
    }
    return out;
  });
}

/** A file-level attribute as a string (e.g. JSON of options), or undefined when absent. */
export async function readStringAttr(path: string, name: string): Promise<string | undefined> {
  return readH5(path, (r) => {
    const v = r.attr(name);
    return v === undefined ? undefined : anyToString(v);
  });
}

/**
 * An HDF5 file open for reading. Every access goes through `at`, so that any HDF5 or h5wasm failure (a damaged
 * attribute, object header or dataset) becomes one VslError naming the file and the object.
 */
export class H5Reader {
  constructor(
    readonly path: string,
    readonly file: H5File,
  ) {}

  /** Run `fn`, which reads `object`; a failure that is not already a VslError names the file and the object. */
  at<T>(object: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof VslError) throw e;
      throw badInput(this.path, object, 'a readable HDF5 object', `a damaged one (${h5ErrorSummary(e)})`);
    }
  }

  /** The value of a root attribute, or undefined when there is none of that name. */
  attr(name: string): unknown {
    const attrs = this.at('attributes of the root group', () => this.file.attrs);
    if (!Object.hasOwn(attrs, name)) return undefined;
    return this.at(`attribute ${name}`, () => attrs[name].value);
  }

  /** The group or dataset at `path` ('/' for the root), or null. */
  get(path: string): ReturnType<H5File['get']> {
    return this.at(path, () => this.file.get(path));
  }
}

/**
 * Open `path`, run `fn` on it with HDF5 errors thrown (never printed to the terminal), close it. The one way vsl
 * reads HDF5: errors name the file and the object (see H5Reader).
 */
export async function readH5<T>(path: string, fn: (r: H5Reader) => T): Promise<T> {
  const mod = await h5module();
  const f = await openH5(path);
  try {
    return withH5Errors(mod, () => {
      const r = new H5Reader(path, f);
      return r.at('file', () => fn(r));
    });
  } finally {
    try {
      withH5Errors(mod, () => f.close());
    } catch {
      // a file that failed to read may also fail to close; the read's error is the one to report
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Additions: errors that throw instead of printing, writing, and typed reading of float32 / int64 arrays.
//
// By default the HDF5 library inside h5wasm does not throw: a failed H5Fcreate/H5Fopen prints an "HDF5-DIAG"
// stack to stderr and hands back file id -1, and every later call on that id quietly does nothing. h5wasm ships
// an optional error handler that throws a JS Error instead; it is process-wide, so it is switched on only
// around synchronous blocks (`withH5Errors`) and switched off again afterwards.

/** An array of one of the two element types vsl stores in HDF5: float32 parameters, int64 counters. */
export interface NumericRecord {
  shape: number[];
  data: Float32Array | BigInt64Array;
}

type H5Module = Awaited<typeof h5wasm.ready>;
type H5File = InstanceType<typeof h5wasm.File>;
let throwingDepth = 0;

/**
 * Run `fn` (synchronously) with HDF5 errors thrown as JS Errors instead of printed. Nestable. Must not be
 * given an async function: the handler is process-wide and is switched off when `fn` returns.
 */
export function withH5Errors<T>(module: H5Module, fn: () => T): T {
  if (throwingDepth > 0) return fn();
  module.activate_throwing_error_handler();
  throwingDepth++;
  // What the wasm module prints itself (abort notices, string decoding warnings) goes to console.error, bound at
  // load time to process.stderr: held back here, and added to the error when the block fails.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be put back on process.stderr, never called alone
  const write = process.stderr.write;
  let printed = '';
  process.stderr.write = (chunk: string | Uint8Array): boolean => {
    if (printed.length < 4096) printed += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  };
  try {
    return fn();
  } catch (e) {
    if (printed && e instanceof Error && !(e instanceof VslError)) e.message += `\n${printed.trim()}`;
    throw e;
  } finally {
    process.stderr.write = write;
    throwingDepth--;
    module.deactivate_throwing_error_handler();
  }
}

/** The h5wasm Emscripten module (needed by `withH5Errors`). */
export async function h5module(): Promise<H5Module> {
  await h5();
  return h5wasm.ready;
}

/**
 * One line out of an HDF5 error stack: the innermost frame without its source location, e.g.
 * "file signature not found" or "unable to open file: name = '/x.h5', errno = 2, error message = '...'".
 */
export function h5ErrorSummary(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const sys = /error message = '([^']*)'/.exec(msg);
  if (sys) return systemCode(e) ? systemCause(e) : sys[1];
  const frames = msg.split('\n').filter((l) => /^\s*#\d+:/.test(l));
  if (frames.length === 0) return msg.split('\n')[0]?.trim() || 'unknown error';
  const last = frames[frames.length - 1];
  // "  #006: /path/H5Fsuper.c line 388 in H5F__super_read(): file signature not found"
  const m = /\sin\s+[\w.]+\(\):\s*(.*)$/.exec(last);
  return (m ? m[1] : last).trim();
}

/** Create (truncate) an HDF5 file for writing, creation order tracked; a VslError naming the path if impossible. */
export async function createH5(path: string): Promise<InstanceType<typeof h5wasm.File>> {
  const lib = await h5();
  const mod = await h5module();
  let f: InstanceType<typeof h5wasm.File>;
  try {
    f = withH5Errors(mod, () => new lib.File(path, 'w', { track_order: true }));
  } catch (e) {
    throw new VslError(`${path}: cannot create HDF5 file (${h5ErrorSummary(e)})`);
  }
  if (f.file_id < 0n) throw new VslError(`${path}: cannot create HDF5 file`);
  return f;
}

/** A readable name for an h5wasm dtype string ('<f' → "float32 (<f)"). */
function describeDtype(dtype: unknown): string {
  const names: Record<string, string> = {
    '<f': 'float32',
    '<d': 'float64',
    '<e': 'float16',
    '<b': 'int8',
    '<h': 'int16',
    '<i': 'int32',
    '<q': 'int64',
    '<B': 'uint8',
    '<H': 'uint16',
    '<I': 'uint32',
    '<Q': 'uint64',
  };
  if (typeof dtype !== 'string') return `a compound or array type (${JSON.stringify(dtype)})`;
  if (names[dtype]) return `${names[dtype]} (${dtype})`;
  if (dtype.startsWith('>')) return `big-endian ${dtype}`;
  if (/^[SA]/.test(dtype)) return `a string type (${dtype})`;
  return dtype;
}

const isShape = (s: unknown): s is number[] => Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && d >= 0);

/** Check that `rec` is a well-formed float32/int64 array; returns the reason it is not, or null. */
export function numericRecordProblem(rec: unknown): string | null {
  if (typeof rec !== 'object' || rec === null) return `not an array record (${rec === null ? 'null' : typeof rec})`;
  const { shape, data } = rec as { shape?: unknown; data?: unknown };
  if (!(data instanceof Float32Array) && !(data instanceof BigInt64Array)) {
    const kind = data === undefined ? 'no data' : ((data as object)?.constructor?.name ?? typeof data);
    return `data must be a Float32Array or BigInt64Array, found ${kind}`;
  }
  if (!isShape(shape)) return `shape must be an array of non-negative integers, found ${JSON.stringify(shape)}`;
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) return `shape [${shape.join(',')}] holds ${n} elements but data has ${data.length}`;
  return null;
}

/**
 * Write one float32 or int64 array as a contiguous dataset `name` in `group` (shape [] = scalar).
 * `file` and `field` only label the error. Call inside `withH5Errors` so that HDF5 failures throw.
 */
export function writeNumeric(
  group: InstanceType<typeof h5wasm.Group>,
  name: string,
  rec: NumericRecord,
  file: string,
  field: string,
): void {
  const problem = numericRecordProblem(rec);
  if (problem) throw badInput(file, field, 'a float32 or int64 array whose shape matches its data', problem);
  if (name === '' || name.includes('/') || name === '.' || name === '..') {
    throw badInput(file, field, 'a dataset name without "/"', JSON.stringify(name));
  }
  const dtype = rec.data instanceof Float32Array ? '<f' : '<q';
  const d = group.create_dataset({ name, data: rec.data, shape: rec.shape, dtype });
  d.create_attribute(CRC_ATTRIBUTE, new Uint32Array([crcOf(d.path, rec.data)]), [], '<I');
}

/**
 * A CRC-32 of each dataset's path and data, kept as an attribute of the dataset: HDF5 checksums its metadata
 * (superblock v2, object headers v2) but not raw data or every link name, so without it a damaged weight, or one
 * renamed by damage, would load as a valid one.
 */
const CRC_ATTRIBUTE = 'crc32';

function crcOf(path: string, data: Float32Array | BigInt64Array): number {
  return crc32(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), crc32(path));
}

/**
 * Read a float32 or int64 dataset with its shape, refusing any other element type (float64, int32, strings,
 * big-endian...) with an error that names the file and the dataset. Scalars come back as 1-element arrays
 * with shape [].
 */
export function readNumeric(entity: unknown, file: string, field: string): NumericRecord {
  if (!(entity instanceof h5wasm.Dataset)) {
    const found =
      entity === null || entity === undefined ? 'nothing' : `a ${(entity as { type?: string }).type ?? 'non-dataset'}`;
    throw badInput(file, field, 'a float32 or int64 dataset', found);
  }
  const dtype = entity.dtype;
  if (dtype !== '<f' && dtype !== '<q') throw badInput(file, field, 'a float32 or int64 dataset', describeDtype(dtype));
  const shape = entity.shape;
  if (shape === null) throw badInput(file, field, 'a float32 or int64 dataset', 'an empty (null) dataspace');
  const value = entity.value;
  let data: Float32Array | BigInt64Array;
  if (value instanceof Float32Array || value instanceof BigInt64Array) data = value;
  else if (typeof value === 'number' && dtype === '<f') data = new Float32Array([value]);
  else if (typeof value === 'bigint' && dtype === '<q') data = new BigInt64Array([value]);
  else throw badInput(file, field, 'a float32 or int64 dataset', `an unreadable value (${typeof value})`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw badInput(file, field, `${n} elements for shape [${shape.join(',')}]`, `${data.length}`);
  const attrs = entity.attrs;
  if (Object.hasOwn(attrs, CRC_ATTRIBUTE)) {
    const want = Number(attrs[CRC_ATTRIBUTE].value);
    const got = crcOf(entity.path, data);
    if (got !== want)
      throw badInput(file, field, `data with CRC-32 ${hex32(want)}`, `${hex32(got)} (the data is damaged)`);
  }
  return { shape: [...shape], data };
}

function hex32(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}
