// Reader for PyTorch `torch.save` files (SGRAF / VSL `*.pth.tar` checkpoints), with no Python.
//
// Two containers exist:
//  - zip (torch >= 1.6): `<prefix>/data.pkl` (the pickle), `<prefix>/data/<key>` (one raw little-endian storage per
//    key), `<prefix>/version`; persistent ids are ('storage', storage_type, key, location, numel). `<prefix>` is the
//    file's base name without its last extension in torch 1.x (`model_best.pth` for `model_best.pth.tar`) and
//    `archive` in torch 2.x.
//  - legacy (torch <= 1.5, or `_use_new_zipfile_serialization=False`): five pickles in a row (magic number,
//    protocol version 1001, sys_info, the object with persistent ids ('storage', storage_type, root_key, location,
//    numel, view_metadata), the list of storage keys), then for each key an int64 element count and the raw bytes.
//
// The pickles go through the allow-list unpickler of pickle.ts: only the globals in TORCH_ALLOWED_GLOBALS resolve.
// Tensors are rebuilt row-major and contiguous; when a tensor is already contiguous and its bytes are aligned in the
// file, its data is a view on the file's buffer (no copy). Such views keep the whole file buffer alive, and two
// tensors that share a storage in the file share memory here too.
import { readFile } from 'node:fs/promises';
import { inflateSync } from 'fflate';
import { badInput, fileError, VslError } from '../util/errors.js';
import { isTuple, PyObject, SETSTATE, unpickle, type AllowList } from './pickle.js';

export type TensorDType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** One tensor: row-major contiguous data. float16 tensors are widened to a Float32Array (dtype stays 'float16'). */
export interface TensorRecord {
  shape: number[];
  dtype: TensorDType;
  data: TensorData;
}
/** A PyTorch state dict, in the file's insertion order. */
export type StateDict = Map<string, TensorRecord>;

export interface TorchCheckpoint {
  epoch?: number;
  /** [img_enc, txt_enc, sim_enc] (layout 'split'), or a single flat state dict (layout 'flat'). */
  model: StateDict[];
  bestRsum?: number;
  /** The attributes of the pickled argparse.Namespace (or dict) `opt`; {} when the file has none. */
  opt: Record<string, unknown>;
  eiters?: number;
  /** The whole unpickled top-level object (dicts are Maps, tensors TensorRecords). */
  raw: unknown;
  layout?: 'split' | 'flat';
  format?: 'zip' | 'legacy';
}

export const MODEL_PARTS = ['img_enc', 'txt_enc', 'sim_enc'] as const;

// ------------------------------------------------------------------------------------------------ storages

/** The value a `torch.<X>Storage` global resolves to: an inert description of the element type. */
export class StorageType {
  constructor(
    readonly name: string,
    /** dtype of the tensors built on it, or null when vsl cannot represent it (refused when a tensor uses it). */
    readonly dtype: TensorDType | null,
    readonly itemsize: number,
    readonly torchDtype: string,
  ) {}
}

const STORAGE_TYPES: readonly StorageType[] = [
  new StorageType('torch.FloatStorage', 'float32', 4, 'float32'),
  new StorageType('torch.DoubleStorage', 'float64', 8, 'float64'),
  new StorageType('torch.HalfStorage', 'float16', 2, 'float16'),
  new StorageType('torch.LongStorage', 'int64', 8, 'int64'),
  new StorageType('torch.IntStorage', 'int32', 4, 'int32'),
  new StorageType('torch.ByteStorage', 'uint8', 1, 'uint8'),
  new StorageType('torch.BoolStorage', 'bool', 1, 'bool'),
  new StorageType('torch.CharStorage', null, 1, 'int8'),
  new StorageType('torch.ShortStorage', null, 2, 'int16'),
  new StorageType('torch.BFloat16Storage', null, 2, 'bfloat16'),
];

/** Raw bytes of one storage (a root storage, or a legacy view into one). */
interface Storage {
  key: string;
  type: StorageType;
  /** Declared element count. */
  numel: number;
  /** Root storage bytes; undefined until read (legacy format reads the data after the object pickle). */
  bytes?: Uint8Array;
  /** For a legacy storage view: the root storage and the element offset into it. */
  root?: Storage;
  offset: number;
}

// ------------------------------------------------------------------------------------------------ tensors

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

type Indexable = { [i: number]: number | bigint; length: number };

/** Elements of `bytes` as the typed array of `dtype` (float16 as Uint16Array): a view when aligned, else a copy. */
function elements(bytes: Uint8Array, type: StorageType): Indexable {
  let b = bytes;
  if (b.byteOffset % type.itemsize !== 0) b = bytes.slice();
  const n = b.byteLength / type.itemsize;
  switch (type.dtype) {
    case 'float32':
      return new Float32Array(b.buffer, b.byteOffset, n);
    case 'float64':
      return new Float64Array(b.buffer, b.byteOffset, n);
    case 'float16':
      return new Uint16Array(b.buffer, b.byteOffset, n);
    case 'int64':
      return new BigInt64Array(b.buffer, b.byteOffset, n);
    case 'int32':
      return new Int32Array(b.buffer, b.byteOffset, n);
    case 'uint8':
    case 'bool':
      return b;
    default:
      throw new Error(`unsupported storage ${type.name}`);
  }
}

function emptyLike(type: StorageType, n: number): Indexable {
  switch (type.dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'float16':
      return new Uint16Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    default:
      return new Uint8Array(n);
  }
}

/** A tensor as the pickle describes it; `data` is filled in by materialize() once the storages are read. */
export class TorchTensor implements TensorRecord {
  dtype: TensorDType;
  data: TensorData = new Float32Array(0);
  private done = false;
  constructor(
    private readonly storage: Storage,
    private readonly storageOffset: number,
    readonly shape: number[],
    private readonly stride: number[],
  ) {
    this.dtype = storage.type.dtype ?? 'uint8';
  }

  /** Build `data` (row-major, contiguous) from the storage; `file` names the checkpoint in errors. */
  materialize(file: string): void {
    if (this.done) return;
    const st = this.storage;
    const type = st.type;
    const where = `tensor on storage ${st.key}`;
    if (type.dtype === null)
      throw badInput(
        file,
        where,
        'a float32/float64/float16/int64/int32/uint8/bool tensor',
        `${type.torchDtype} data (${type.name}, not supported)`,
      );
    const root = st.root ?? st;
    if (!root.bytes)
      throw badInput(file, `storage ${root.key}`, 'its data in the file', 'no data (truncated or malformed file)');
    const rootAvail = Math.floor(root.bytes.byteLength / type.itemsize);
    if (root.numel > rootAvail)
      throw badInput(
        file,
        `storage ${root.key}`,
        `${root.numel * type.itemsize} bytes (${root.numel} × ${type.torchDtype})`,
        `${root.bytes.byteLength} bytes (truncated storage)`,
      );
    if (st.root && st.offset + st.numel > root.numel)
      throw badInput(
        file,
        `storage view ${st.key}`,
        `elements within its root storage ${root.key} (${root.numel})`,
        `elements ${st.offset}..${st.offset + st.numel}`,
      );
    const numel = this.shape.reduce((a, b) => a * b, 1);
    let last = this.storageOffset;
    for (let d = 0; d < this.shape.length; d++) if (this.shape[d]! > 0) last += (this.shape[d]! - 1) * this.stride[d]!;
    if (numel > 0 && last >= st.numel)
      throw badInput(
        file,
        where,
        `a view within the storage's ${st.numel} elements`,
        `shape [${this.shape}] stride [${this.stride}] offset ${this.storageOffset} reaching element ${last}`,
      );
    const base = st.offset + this.storageOffset; // element offset in the root storage
    let contiguous = true;
    let expect = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.stride[d] !== expect) contiguous = false;
      expect *= this.shape[d]!;
    }
    let out: Indexable;
    if (numel === 0) out = emptyLike(type, 0);
    else if (contiguous) {
      out = elements(root.bytes.subarray(base * type.itemsize, (base + numel) * type.itemsize), type);
    } else {
      const src = elements(root.bytes.subarray(0, root.numel * type.itemsize), type);
      out = emptyLike(type, numel);
      const nd = this.shape.length;
      const idx = new Array<number>(nd).fill(0);
      let s = base;
      for (let i = 0; i < numel; i++) {
        out[i] = src[s]!;
        for (let d = nd - 1; d >= 0; d--) {
          s += this.stride[d]!;
          if (++idx[d]! < this.shape[d]!) break;
          s -= this.stride[d]! * this.shape[d]!;
          idx[d] = 0;
        }
      }
    }
    if (type.dtype === 'float16') {
      const f = new Float32Array(out.length);
      for (let i = 0; i < f.length; i++) f[i] = halfToFloat(out[i] as number);
      out = f;
    }
    this.data = out as TensorData;
    this.done = true;
  }
}

const DTYPES: readonly string[] = ['float32', 'float64', 'float16', 'int64', 'int32', 'uint8', 'bool'];

/** True for a TensorRecord (one this reader built, or any object of that shape). */
export function isTensorRecord(v: unknown): v is TensorRecord {
  if (v instanceof TorchTensor) return true;
  if (!v || typeof v !== 'object') return false;
  const t = v as Partial<TensorRecord>;
  return (
    Array.isArray(t.shape) && typeof t.dtype === 'string' && DTYPES.includes(t.dtype) && ArrayBuffer.isView(t.data)
  );
}

// ------------------------------------------------------------------------------------------------ numpy scalars

const NP_KINDS: Record<string, string> = { f: 'f', i: 'i', u: 'u', b: 'b', '?': 'b' };

/** numpy.dtype as pickled with numpy scalars: ('f8', False, True) then BUILD (3, '<', ...). */
class NumpyDType {
  byteorder: string;
  constructor(
    readonly kind: string,
    readonly itemsize: number,
    byteorder: string,
  ) {
    this.byteorder = byteorder;
  }
  [SETSTATE](state: unknown): void {
    if (isTuple(state) && typeof state[1] === 'string') this.byteorder = state[1];
  }
}

function numpyDType(spec: unknown): NumpyDType {
  if (typeof spec !== 'string') throw new Error(`expected a dtype string such as 'f8', found ${typeof spec}`);
  const m = /^([<>|=]?)([fiub?])(\d*)$/.exec(spec);
  const size = m ? (m[2] === '?' ? 1 : Number(m[3])) : NaN;
  if (!m || !NP_KINDS[m[2]!] || ![1, 2, 4, 8].includes(size))
    throw new Error(`expected a numeric numpy dtype (f4, f8, i4, i8, u1, b1...), found '${spec}'`);
  return new NumpyDType(NP_KINDS[m[2]!]!, size, m[1] || '=');
}

function latin1Bytes(s: string): Uint8Array | null {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) return null;
    b[i] = c;
  }
  return b;
}

/** numpy.core.multiarray.scalar(dtype, bytes): the value of one numeric numpy scalar. */
function numpyScalar(dtype: unknown, raw: unknown): number | bigint | boolean {
  if (!(dtype instanceof NumpyDType)) throw new Error('expected a numpy.dtype as first argument');
  let bytes: Uint8Array | null = raw instanceof Uint8Array ? raw : null;
  if (typeof raw === 'string') {
    // a Python 2 str (or a str decoded from one): latin-1 first, else the UTF-8 it came from
    bytes = latin1Bytes(raw);
    if (!bytes || bytes.length !== dtype.itemsize) bytes = new TextEncoder().encode(raw);
  }
  if (!bytes || bytes.length !== dtype.itemsize)
    throw new Error(
      `expected ${dtype.itemsize} bytes of scalar data, found ${bytes ? bytes.length + ' bytes' : typeof raw}`,
    );
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = dtype.byteorder !== '>';
  const key = `${dtype.kind}${dtype.itemsize}`;
  switch (key) {
    case 'f8':
      return v.getFloat64(0, le);
    case 'f4':
      return v.getFloat32(0, le);
    case 'f2':
      return halfToFloat(v.getUint16(0, le));
    case 'i8': {
      const b = v.getBigInt64(0, le);
      return Number.isSafeInteger(Number(b)) ? Number(b) : b;
    }
    case 'u8': {
      const b = v.getBigUint64(0, le);
      return Number.isSafeInteger(Number(b)) ? Number(b) : b;
    }
    case 'i4':
      return v.getInt32(0, le);
    case 'u4':
      return v.getUint32(0, le);
    case 'i2':
      return v.getInt16(0, le);
    case 'u2':
      return v.getUint16(0, le);
    case 'i1':
      return v.getInt8(0);
    case 'u1':
      return v.getUint8(0);
    case 'b1':
      return v.getUint8(0) !== 0;
    default:
      throw new Error(`unsupported numpy scalar type ${key}`);
  }
}

// ------------------------------------------------------------------------------------------------ the allow-list

/** A marker for a class a pickle may name without calling it (e.g. the `torch.Tensor` type of _rebuild_from_type_v2). */
class TypeMarker {
  constructor(readonly name: string) {}
}

function asInt(v: unknown, what: string): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n))
    throw new Error(`expected an integer ${what}, found ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  return n;
}

function asIntTuple(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new Error(`expected a tuple of integers as ${what}, found ${typeof v}`);
  return v.map((x) => asInt(x, `in ${what}`));
}

interface LoadContext {
  file: string;
  tensors: TorchTensor[];
}

function rebuildTensor(
  ctx: LoadContext,
  storage: unknown,
  offset: unknown,
  size: unknown,
  stride: unknown,
): TorchTensor {
  if (
    !storage ||
    typeof storage !== 'object' ||
    !('type' in storage) ||
    !((storage as Storage).type instanceof StorageType)
  )
    throw new Error('expected a storage (persistent id) as first argument');
  const shape = asIntTuple(size, 'size');
  const strides = asIntTuple(stride, 'stride');
  if (shape.length !== strides.length)
    throw new Error(`expected as many strides as dimensions, found size [${shape}] stride [${strides}]`);
  if (shape.some((d) => d < 0) || strides.some((s) => s < 0))
    throw new Error(`expected non-negative sizes and strides, found size [${shape}] stride [${strides}]`);
  const off = asInt(offset, 'storage offset');
  if (off < 0) throw new Error(`expected a non-negative storage offset, found ${off}`);
  const t = new TorchTensor(storage as Storage, off, shape, strides);
  ctx.tensors.push(t);
  return t;
}

/** Every global a torch checkpoint may name, with the reason each is harmless. */
export const TORCH_ALLOWED_GLOBALS: readonly string[] = [
  'collections.OrderedDict', // -> an empty Map (state dicts); takes no code, only data
  'argparse.Namespace', // -> a PyObject whose attributes BUILD fills (opt)
  'torch._utils._rebuild_tensor', // torch 0.4 tensor: (storage, offset, size, stride) -> TensorRecord
  'torch._utils._rebuild_tensor_v2', // torch >= 1.0 tensor: same plus requires_grad, hooks (ignored)
  'torch._utils._rebuild_parameter', // nn.Parameter: returns its tensor argument
  'torch._utils._rebuild_parameter_with_state', // nn.Parameter with __dict__ state: returns the tensor
  'torch._tensor._rebuild_from_type_v2', // tensor subclass wrapper: calls only one of the rebuild functions above
  'torch.Tensor', // inert type marker for _rebuild_from_type_v2
  'torch.nn.parameter.Parameter', // inert type marker
  'torch.device', // -> a string such as 'cuda:0'
  ...STORAGE_TYPES.map((s) => s.name), // inert storage type markers, used only inside persistent ids
  'numpy.dtype', // -> a description of a numeric dtype (refuses object / string dtypes)
  'numpy.core.multiarray.scalar', // numpy 1.x scalar (best_rsum): decodes 1-8 bytes to a number
  'numpy._core.multiarray.scalar', // numpy 2.x name of the same
  '_codecs.encode', // protocol-2 bytes: (str, 'latin1') -> Uint8Array
];

function makeAllowList(ctx: LoadContext): AllowList {
  const m = new Map<string, unknown>();
  const rebuildV2 = (storage: unknown, offset: unknown, size: unknown, stride: unknown): TorchTensor =>
    rebuildTensor(ctx, storage, offset, size, stride);
  const rebuildV1 = (storage: unknown, offset: unknown, size: unknown, stride: unknown): TorchTensor =>
    rebuildTensor(ctx, storage, offset, size, stride);
  const rebuildParameter = (data: unknown): unknown => {
    if (!(data instanceof TorchTensor)) throw new Error('expected a tensor as the parameter data');
    return data;
  };
  const rebuilders = new Set<unknown>([rebuildV1, rebuildV2, rebuildParameter]);
  m.set('collections.OrderedDict', (items?: unknown) => {
    const d = new Map<unknown, unknown>();
    if (Array.isArray(items))
      for (const kv of items) {
        if (!Array.isArray(kv) || kv.length !== 2) throw new Error('expected (key, value) pairs');
        d.set(kv[0], kv[1]);
      }
    return d;
  });
  m.set('argparse.Namespace', () => new PyObject('argparse.Namespace'));
  m.set('torch._utils._rebuild_tensor', rebuildV1);
  m.set('torch._utils._rebuild_tensor_v2', rebuildV2);
  m.set('torch._utils._rebuild_parameter', rebuildParameter);
  m.set('torch._utils._rebuild_parameter_with_state', rebuildParameter);
  m.set('torch._tensor._rebuild_from_type_v2', (func: unknown, _type: unknown, args: unknown) => {
    if (!rebuilders.has(func)) throw new Error('expected a torch tensor rebuild function as first argument');
    if (!Array.isArray(args)) throw new Error('expected a tuple of arguments');
    return (func as (...a: unknown[]) => unknown)(...args);
  });
  m.set('torch.Tensor', new TypeMarker('torch.Tensor'));
  m.set('torch.nn.parameter.Parameter', new TypeMarker('torch.nn.parameter.Parameter'));
  m.set('torch.device', (type: unknown, index?: unknown) => {
    if (typeof type !== 'string') throw new Error('expected a device string');
    return index === undefined || index === null ? type : `${type}:${asInt(index, 'device index')}`;
  });
  for (const s of STORAGE_TYPES) m.set(s.name, s);
  m.set('numpy.dtype', (spec: unknown) => numpyDType(spec));
  m.set('numpy.core.multiarray.scalar', numpyScalar);
  m.set('numpy._core.multiarray.scalar', numpyScalar);
  m.set('_codecs.encode', (s: unknown, enc: unknown = 'utf-8') => {
    if (typeof s !== 'string' || typeof enc !== 'string') throw new Error('expected (str, encoding)');
    const e = enc.toLowerCase().replace(/_/g, '-');
    if (['latin1', 'latin-1', 'iso-8859-1', 'l1'].includes(e)) {
      const b = latin1Bytes(s);
      if (!b) throw new Error('expected latin-1 characters only');
      return b;
    }
    if (e === 'utf-8' || e === 'utf8' || e === 'ascii') return new TextEncoder().encode(s);
    throw new Error(`expected encoding latin1 or utf-8, found ${enc}`);
  });
  for (const name of m.keys())
    if (!TORCH_ALLOWED_GLOBALS.includes(name)) throw new Error(`internal: ${name} undocumented`);
  return m;
}

// ------------------------------------------------------------------------------------------------ zip

/** One entry of a zip archive's central directory, with its data (a view on the archive when stored). */
export interface ZipEntry {
  name: string;
  method: number;
  data: Uint8Array;
}

/**
 * Read a zip archive's central directory (zip64 included) and return its entries by name. Stored entries are
 * views on `bytes`, not copies; deflated entries are inflated with fflate.
 */
export function readZip(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.byteLength;
  let eocd = -1;
  for (let p = len - 22; p >= Math.max(0, len - 22 - 0xffff); p--) {
    if (dv.getUint32(p, true) === 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0)
    throw badInput(
      file,
      'zip end of central directory',
      'the record at the end of the archive',
      `none in the last ${Math.min(len, 22 + 0xffff)} bytes (truncated file?)`,
    );
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if (eocd >= 20 && dv.getUint32(eocd - 20, true) === 0x07064b50) {
    const z64 = Number(dv.getBigUint64(eocd - 12, true));
    if (z64 + 56 > len || dv.getUint32(z64, true) !== 0x06064b50)
      throw badInput(
        file,
        'zip64 end of central directory',
        `a record at byte ${z64}`,
        'none (truncated or malformed archive)',
      );
    count = Number(dv.getBigUint64(z64 + 32, true));
    cdSize = Number(dv.getBigUint64(z64 + 40, true));
    cdOffset = Number(dv.getBigUint64(z64 + 48, true));
  }
  if (cdOffset + cdSize > len)
    throw badInput(
      file,
      'zip central directory',
      `bytes ${cdOffset}..${cdOffset + cdSize}`,
      `a ${len}-byte file (truncated)`,
    );
  const entries = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > len || dv.getUint32(p, true) !== 0x02014b50)
      throw badInput(file, `zip central directory entry ${i}`, 'signature PK\\x01\\x02', `something else at byte ${p}`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    let csize = dv.getUint32(p + 20, true);
    let usize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let local = dv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen > len)
      throw badInput(file, `zip central directory entry ${i}`, 'a complete record', 'a truncated one');
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: the 64-bit values present are those whose 32-bit field is 0xFFFFFFFF
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = dv.getUint16(e, true);
      const sz = dv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + sz)
            throw badInput(file, `zip entry ${name}`, 'a complete zip64 extra field', 'a short one');
          const v = Number(dv.getBigUint64(q, true));
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take();
        if (csize === 0xffffffff) csize = take();
        if (local === 0xffffffff) local = take();
      }
      e += 4 + sz;
    }
    p += 46 + nameLen + extraLen + commentLen;
    if (flags & 1) throw badInput(file, `zip entry ${name}`, 'an unencrypted entry', 'an encrypted one');
    if (local + 30 > len || dv.getUint32(local, true) !== 0x04034b50)
      throw badInput(
        file,
        `zip entry ${name}`,
        `a local header at byte ${local}`,
        'none (truncated or malformed archive)',
      );
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    if (start + csize > len)
      throw badInput(
        file,
        `zip entry ${name}`,
        `${csize} bytes of data at byte ${start}`,
        `only ${Math.max(0, len - start)} (truncated file)`,
      );
    const raw = bytes.subarray(start, start + csize);
    let data: Uint8Array;
    if (method === 0) {
      if (csize !== usize)
        throw badInput(file, `zip entry ${name}`, 'equal stored and original sizes', `${csize} and ${usize}`);
      data = raw;
    } else if (method === 8) data = inflateSync(raw, { out: new Uint8Array(usize) });
    else throw badInput(file, `zip entry ${name}`, 'compression method 0 (stored) or 8 (deflate)', `method ${method}`);
    entries.set(name, { name, method, data });
  }
  return entries;
}

// ------------------------------------------------------------------------------------------------ containers

function describeBytes(b: Uint8Array): string {
  const head = b.subarray(0, 8);
  const hex = [...head].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  const text = [...head].map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
  const start = new TextDecoder('latin1').decode(b.subarray(0, 64)).trimStart().toLowerCase();
  let guess = '';
  if (head[0] === 0x89 && text.startsWith('.HDF')) guess = ': an HDF5 file';
  else if (head[0] === 0x1f && head[1] === 0x8b) guess = ': a gzip file';
  else if (head[0] === 0x93 && text.startsWith('.NUMPY')) guess = ': a numpy .npy file';
  else if (start.startsWith('<!doctype html') || start.startsWith('<html'))
    guess = ': an HTML page (a failed download?)';
  else if (b.byteLength > 262 && new TextDecoder('latin1').decode(b.subarray(257, 262)) === 'ustar')
    guess = ': a tar archive (the torch <= 0.3 container, not supported)';
  else if (start.startsWith('{') || start.startsWith('[')) guess = ': JSON text';
  return `${b.byteLength === 0 ? 'an empty file' : `bytes ${hex} ("${text}")`}${guess}`;
}

function asStoragePid(pid: unknown, arity: number, file: string): readonly unknown[] {
  if (!isTuple(pid) || pid[0] !== 'storage' || pid.length !== arity || !(pid[1] instanceof StorageType))
    throw badInput(
      file,
      'persistent id',
      `('storage', <torch storage type>, key, location, numel${arity === 6 ? ', view' : ''})`,
      `${Array.isArray(pid) ? `a tuple of ${pid.length} starting ${String(pid[0])}` : typeof pid}`,
    );
  return pid;
}

function pidKey(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new Error('storage key');
}

function loadZip(bytes: Uint8Array, file: string): { value: unknown; version?: string } {
  const entries = readZip(bytes, file);
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1)
    throw badInput(
      file,
      'zip entries',
      'one <archive>/data.pkl (a torch.save zip)',
      pkls.length ? pkls.join(', ') : `${[...entries.keys()].slice(0, 5).join(', ') || 'no entries'}`,
    );
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const text = (n: string): string | undefined => {
    const e = entries.get(prefix + n);
    return e ? new TextDecoder().decode(e.data).trim() : undefined;
  };
  const byteorder = text('byteorder');
  if (byteorder !== undefined && byteorder !== 'little')
    throw badInput(file, `${prefix}byteorder`, 'little', byteorder);
  const ctx: LoadContext = { file, tensors: [] };
  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    const t = asStoragePid(pid, 5, file);
    const key = pidKey(t[2]);
    const type = t[1] as StorageType;
    const numel = asInt(t[4], 'storage numel');
    let s = storages.get(key);
    if (s) return s;
    const entry = entries.get(`${prefix}data/${key}`);
    if (!entry)
      throw badInput(
        file,
        `${prefix}data/${key}`,
        'a storage entry in the archive',
        'none (truncated or incomplete archive)',
      );
    if (entry.data.byteLength < numel * type.itemsize)
      throw badInput(
        file,
        `${prefix}data/${key}`,
        `${numel * type.itemsize} bytes (${numel} × ${type.torchDtype})`,
        `${entry.data.byteLength} bytes (truncated storage)`,
      );
    s = { key, type, numel, bytes: entry.data, offset: 0 };
    storages.set(key, s);
    return s;
  };
  const { value } = unpickle(entries.get(pkls[0]!)!.data, {
    allow: makeAllowList(ctx),
    persistentLoad,
    file: `${file}:${pkls[0]}`,
  });
  for (const t of ctx.tensors) t.materialize(file);
  return { value, version: text('version') ?? text('.data/version') };
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

function loadLegacy(bytes: Uint8Array, file: string): { value: unknown } {
  const none: AllowList = new Map();
  let magic: unknown;
  let pos: number;
  try {
    ({ value: magic, end: pos } = unpickle(bytes, { allow: none, file }));
  } catch (e) {
    throw badInput(
      file,
      'file header',
      'a zip archive (torch >= 1.6) or the legacy torch magic number pickle',
      `${describeBytes(bytes)} (${(e as Error).message})`,
    );
  }
  if (magic !== LEGACY_MAGIC)
    throw badInput(
      file,
      'legacy torch magic number',
      '0x1950a86a20f9469cfc6c',
      `${typeof magic === 'bigint' || typeof magic === 'number' ? '0x' + magic.toString(16) : typeof magic} (${describeBytes(bytes)})`,
    );
  let r = unpickle(bytes, { allow: none, file }, pos);
  if (r.value !== 1001) throw badInput(file, 'legacy torch protocol version', '1001', String(r.value));
  r = unpickle(bytes, { allow: none, file }, r.end);
  const sys = r.value;
  if (sys instanceof Map && sys.get('little_endian') === false)
    throw badInput(file, 'sys_info.little_endian', 'true', 'false (big-endian checkpoints are not supported)');

  const ctx: LoadContext = { file, tensors: [] };
  const roots = new Map<string, Storage>();
  const views = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    const t = asStoragePid(pid, 6, file);
    const type = t[1] as StorageType;
    const key = pidKey(t[2]);
    const numel = asInt(t[4], 'storage numel');
    let root = roots.get(key);
    if (!root) roots.set(key, (root = { key, type, numel, offset: 0 }));
    const view = t[5];
    if (view === null || view === undefined) return root;
    if (!isTuple(view) || view.length !== 3)
      throw badInput(file, `storage ${key} view`, '(view_key, offset, size)', String(view));
    const vkey = pidKey(view[0]);
    let v = views.get(vkey);
    if (!v)
      views.set(
        vkey,
        (v = { key: vkey, type, numel: asInt(view[2], 'view size'), root, offset: asInt(view[1], 'view offset') }),
      );
    return v;
  };
  r = unpickle(bytes, { allow: makeAllowList(ctx), persistentLoad, file }, r.end);
  const value = r.value;
  r = unpickle(bytes, { allow: none, file }, r.end);
  const keys = r.value;
  if (!Array.isArray(keys)) throw badInput(file, 'legacy storage key list', 'a list of keys', typeof keys);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = r.end;
  for (const k of keys) {
    const key = pidKey(k);
    const s = roots.get(key);
    if (!s) throw badInput(file, `storage ${key}`, 'a storage the object refers to', 'an unreferenced key');
    if (pos + 8 > bytes.byteLength)
      throw badInput(
        file,
        `storage ${key}`,
        'an int64 element count',
        `${bytes.byteLength - pos} bytes left (truncated storage)`,
      );
    const n = Number(dv.getBigInt64(pos, true));
    const nbytes = n * s.type.itemsize;
    pos += 8;
    if (n < 0 || pos + nbytes > bytes.byteLength)
      throw badInput(
        file,
        `storage ${key}`,
        `${nbytes} bytes (${n} × ${s.type.torchDtype})`,
        `${bytes.byteLength - pos} bytes left in the file (truncated storage)`,
      );
    if (n < s.numel) throw badInput(file, `storage ${key}`, `${s.numel} elements`, `${n} (truncated storage)`);
    s.bytes = bytes.subarray(pos, pos + nbytes);
    pos += nbytes;
  }
  for (const t of ctx.tensors) t.materialize(file);
  return { value };
}

/** The unpickled content of a torch.save file, tensors rebuilt. */
export interface TorchFile {
  value: unknown;
  format: 'zip' | 'legacy';
  /** `<archive>/version` of a zip container. */
  version?: string;
}

/** Decode a torch.save file already in memory (`file` names it in errors). */
export function loadTorch(bytes: Uint8Array, file: string): TorchFile {
  if (!LITTLE_ENDIAN_HOST) throw new VslError(`${file}: reading torch files needs a little-endian host`);
  if (bytes.byteLength >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04)
    return { ...loadZip(bytes, file), format: 'zip' };
  if (bytes.byteLength >= 2 && bytes[0] === 0x80 && bytes[1] <= 5)
    return { ...loadLegacy(bytes, file), format: 'legacy' };
  throw badInput(
    file,
    'file header',
    'a torch checkpoint (zip archive "PK\\x03\\x04" or legacy pickle "\\x80\\x02")',
    describeBytes(bytes),
  );
}

/** Read and decode a torch.save file. */
export async function readTorchFile(path: string): Promise<TorchFile> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fileError(path, e);
  }
  return loadTorch(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

// ------------------------------------------------------------------------------------------------ checkpoints

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v instanceof TorchTensor) return `a tensor [${v.shape}]`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (Array.isArray(v)) return `a ${isTuple(v) ? 'tuple' : 'list'} of ${v.length}`;
  if (v instanceof PyObject) return `a ${v.className}`;
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}

function toStateDict(v: unknown, file: string, field: string): StateDict | null {
  if (!(v instanceof Map)) return null;
  const sd: StateDict = new Map();
  for (const [k, t] of v) {
    if (typeof k !== 'string') throw badInput(file, field, 'string keys', describeValue(k));
    if (!(t instanceof TorchTensor)) throw badInput(file, `${field}['${k}']`, 'a tensor', describeValue(t));
    sd.set(k, t);
  }
  return sd;
}

function optionalNumber(v: unknown, file: string, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof TorchTensor && v.data.length === 1) return Number(v.data[0]);
  throw badInput(file, field, 'a number', describeValue(v));
}

function plainObject(entries: Iterable<[string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries)
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** Interpret an unpickled checkpoint dict {epoch, model, best_rsum, opt, Eiters} (`file` names it in errors). */
export function toCheckpoint(value: unknown, file: string, format?: 'zip' | 'legacy'): TorchCheckpoint {
  if (!(value instanceof Map))
    throw badInput(file, 'top-level object', 'a dict {epoch, model, best_rsum, opt, Eiters}', describeValue(value));
  if (!value.has('model'))
    throw badInput(
      file,
      'model',
      "a 'model' key in the checkpoint dict",
      `keys ${[...value.keys()].map(String).join(', ') || '(none)'}`,
    );
  const m = value.get('model');
  let model: StateDict[];
  let layout: 'split' | 'flat';
  const flat = toStateDict(m, file, 'model');
  if (flat) {
    model = [flat];
    layout = 'flat';
  } else if (Array.isArray(m) && m.length === 3) {
    model = m.map((sd, i) => {
      const d = toStateDict(sd, file, `model[${i}] (${MODEL_PARTS[i]})`);
      if (!d) throw badInput(file, `model[${i}] (${MODEL_PARTS[i]})`, 'a state dict', describeValue(sd));
      return d;
    });
    layout = 'split';
  } else
    throw badInput(
      file,
      'model',
      'a list of 3 state dicts [img_enc, txt_enc, sim_enc] or one flat state dict',
      describeValue(m),
    );
  const o = value.get('opt');
  let opt: Record<string, unknown>;
  if (o === undefined || o === null) opt = {};
  else if (o instanceof PyObject) opt = plainObject(Object.entries(o.attrs));
  else if (o instanceof Map && [...o.keys()].every((k) => typeof k === 'string'))
    opt = plainObject(o as Map<string, unknown>);
  else throw badInput(file, 'opt', 'an argparse.Namespace or a dict', describeValue(o));
  return {
    epoch: optionalNumber(value.get('epoch'), file, 'epoch'),
    model,
    bestRsum: optionalNumber(value.get('best_rsum'), file, 'best_rsum'),
    opt,
    eiters: optionalNumber(value.get('Eiters'), file, 'Eiters'),
    raw: value,
    layout,
    format,
  };
}

/** Read an SGRAF / VSL checkpoint (`*.pth.tar`) in either container, with no Python and no code execution. */
export async function readTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  const f = await readTorchFile(path);
  return toCheckpoint(f.value, path, f.format);
}

/**
 * One state dict with vsl's key names: `img_enc.`, `txt_enc.`, `sim_enc.` prefixes for a split checkpoint; a flat
 * checkpoint's keys are kept as they are.
 */
export function flattenModel(ckpt: TorchCheckpoint): StateDict {
  if (ckpt.model.length === 1) return new Map(ckpt.model[0]);
  if (ckpt.model.length !== 3)
    throw new VslError(
      `checkpoint model: expected 3 state dicts [img_enc, txt_enc, sim_enc] or 1 flat one, found ${ckpt.model.length}`,
    );
  const out: StateDict = new Map();
  ckpt.model.forEach((sd, i) => {
    for (const [k, t] of sd) out.set(`${MODEL_PARTS[i]}.${k}`, t);
  });
  return out;
}
