// The torch storage/tensor layer: storage types as pickles name them, raw storages, and tensors rebuilt from
// (storage, offset, size, stride) into row-major contiguous arrays. When a tensor is already contiguous and its
// bytes are aligned in the file, its data is a view on the file's buffer (no copy). Such views keep the whole
// file buffer alive, and two tensors that share a storage in the file share memory here too.
import { badInput } from '../util/errors.js';
import { halfToFloat } from './binary.js';

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

export const STORAGE_TYPES: readonly StorageType[] = [
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
export interface Storage {
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
    for (let d = 0; d < this.shape.length; d++) if (this.shape[d] > 0) last += (this.shape[d] - 1) * this.stride[d];
    if (numel > 0 && last >= st.numel)
      throw badInput(
        file,
        where,
        `a view within the storage's ${st.numel} elements`,
        `shape [${this.shape.join(',')}] stride [${this.stride.join(',')}] offset ${this.storageOffset} reaching element ${last}`,
      );
    const base = st.offset + this.storageOffset; // element offset in the root storage
    let contiguous = true;
    let expect = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.stride[d] !== expect) contiguous = false;
      expect *= this.shape[d];
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
          s += this.stride[d];
          if (++idx[d] < this.shape[d]) break;
          s -= this.stride[d] * this.shape[d];
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
