// Replacements for tfjs-backend-wasm kernels that copy far more than they return, or compute slowly.
// - Identity copies its input; tfjs clones every tensor a gradient saves, so every taped tensor would be duplicated.
// - Slice (and SplitV and Unpack, which call it) reads its input with readSync, a copy of the whole input,
//   before taking the slice: slicing image m of a (128, 36, 1024) batch copies all 128 images, and unstacking
//   it costs 128 whole copies. These versions copy only the slice, from a view of the wasm heap.
// - Tanh calls a scalar library function per element, ~15x tfjs-wasm's own sigmoid; vsl_kernels.c has a vector one.
// - Transpose walks a generic n-d index per element (~13 ns); swapping the last two axes, the only transpose the
//   model makes (every Linear's weight, once per step), is a blocked kernel in vsl_kernels.c.
import * as tf from '@tensorflow/tfjs';
import { kernelsOf, ptr, type WasmBackendInternals } from './kernels/module.js';

type TensorInfo = tf.TensorInfo;

/** Row-major strides of `shape` in elements. */
function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Copy x[begin : begin + size] into a new tensor of shape `outShape` (same element count as `size`). */
function sliceCopy(
  backend: WasmBackendInternals,
  x: TensorInfo,
  begin: number[],
  size: number[],
  outShape = size,
): TensorInfo {
  const out = backend.makeOutput(outShape, x.dtype);
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return out;
  // views taken after makeOutput: an allocation can grow the heap and detach older views
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const st = strides(x.shape);
  // k: the outermost axis from which the slice is one contiguous run of the input
  let k = rank - 1;
  while (k > 0 && size[k] === x.shape[k]) k--;
  const run = size[k] * st[k];
  const idx = new Array<number>(k).fill(0); // odometer over the axes before k
  for (let o = 0; o < total; o += run) {
    let off = begin[k] * st[k];
    for (let a = 0; a < k; a++) off += (begin[a] + idx[a]) * st[a];
    ov.set(xv.subarray(off, off + run), o);
    for (let a = k - 1; a >= 0; a--) {
      if (++idx[a] < size[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

function register(kernelName: string, kernelFunc: tf.KernelFunc): void {
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
}

/** Install the replacements on the wasm backend (call once, after it is registered). */
export function patchWasmKernels(): void {
  const original = tf.getKernel('Slice', 'wasm').kernelFunc;
  register('Identity', ({ inputs, backend }) => {
    const x = (inputs as { x: TensorInfo }).x;
    (backend as unknown as WasmBackendInternals).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  register('Slice', (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    if (x.dtype === 'string') return original(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x, begin, size);
    return sliceCopy(args.backend as unknown as WasmBackendInternals, x, b, s);
  });
  register('SplitV', ({ inputs, attrs, backend }) => {
    const x = (inputs as { x: TensorInfo }).x;
    const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((n) => {
      const size = [...x.shape];
      size[ax] = n;
      const out = sliceCopy(backend as unknown as WasmBackendInternals, x, [...begin], size);
      begin[ax] += n;
      return out;
    });
  });
  register('Unpack', ({ inputs, attrs, backend }) => {
    const x = (inputs as { value: TensorInfo }).value;
    const ax = tf.util.parseAxisParam((attrs as unknown as { axis: number }).axis, x.shape)[0];
    const outShape = x.shape.filter((_, i) => i !== ax);
    const size = [...x.shape];
    size[ax] = 1;
    return Array.from({ length: x.shape[ax] }, (_, i) => {
      const begin = new Array<number>(x.shape.length).fill(0);
      begin[ax] = i;
      return sliceCopy(backend as unknown as WasmBackendInternals, x, begin, size, outShape);
    });
  });
  const tanh = tf.getKernel('Tanh', 'wasm').kernelFunc;
  register('Tanh', (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    if (x.dtype !== 'float32') return tanh(args);
    const b = args.backend as unknown as WasmBackendInternals;
    const out = b.makeOutput(x.shape, 'float32');
    kernelsOf(b).tanh_f32(tf.util.sizeFromShape(x.shape), ptr(b, x), ptr(b, out));
    return out;
  });
  const transpose = tf.getKernel('Transpose', 'wasm').kernelFunc;
  register('Transpose', (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    const perm = (args.attrs as unknown as { perm: number[] }).perm;
    const r = x.shape.length;
    const lastTwo = r >= 2 && perm.every((p, i) => (i < r - 2 ? p === i : p === (i === r - 2 ? r - 1 : r - 2)));
    if (!lastTwo || (x.dtype !== 'float32' && x.dtype !== 'int32')) return transpose(args);
    const b = args.backend as unknown as WasmBackendInternals;
    const out = b.makeOutput(
      perm.map((p) => x.shape[p]),
      x.dtype,
    );
    const [rows, cols] = x.shape.slice(-2);
    const batch = tf.util.sizeFromShape(x.shape.slice(0, -2));
    if (batch * rows * cols > 0) kernelsOf(b).transpose_f32(batch, rows, cols, ptr(b, x), ptr(b, out));
    return out;
  });
}
