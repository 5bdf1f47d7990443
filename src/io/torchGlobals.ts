// The allow-list of globals a torch checkpoint's pickle may name, each resolved to inert data or a tensor
// rebuild function (pickle.ts refuses every other global), and the numpy scalars (best_rsum) it decodes.
import { halfToFloat, latin1Bytes } from './binary.js';
import { isTuple, PyObject, SETSTATE, type AllowList } from './pickle.js';
import { STORAGE_TYPES, StorageType, TorchTensor, type Storage } from './torchTensor.js';

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
  if (!m || !NP_KINDS[m[2]] || ![1, 2, 4, 8].includes(size))
    throw new Error(`expected a numeric numpy dtype (f4, f8, i4, i8, u1, b1...), found '${spec}'`);
  return new NumpyDType(NP_KINDS[m[2]], size, m[1] || '=');
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

export function asInt(v: unknown, what: string): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n))
    throw new Error(`expected an integer ${what}, found ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  return n;
}

function asIntTuple(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new Error(`expected a tuple of integers as ${what}, found ${typeof v}`);
  return v.map((x) => asInt(x, `in ${what}`));
}

export interface LoadContext {
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
    throw new Error(
      `expected as many strides as dimensions, found size [${shape.join(',')}] stride [${strides.join(',')}]`,
    );
  if (shape.some((d) => d < 0) || strides.some((s) => s < 0))
    throw new Error(
      `expected non-negative sizes and strides, found size [${shape.join(',')}] stride [${strides.join(',')}]`,
    );
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

export function makeAllowList(ctx: LoadContext): AllowList {
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
    const argv: unknown[] = args;
    return (func as (...a: unknown[]) => unknown)(...argv);
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
