// The few compound pieces every ONNX block uses, written once: the Linear as a Gemm on the weight as PyTorch
// stores it ([out, in], transB = 1: no transposed copy), the l2 normalisation of ops.ts (the eps added to the norm),
// and the shape plumbing of dynamic dimensions (Shape slices, Reshape targets made of known and dynamic parts).
import { NORM_EPS } from '../../model/config.js';
import { DATA_TYPE, float, int, ints, type ElemType, type GraphBuilder, type Value } from './builder.js';
import type { Linear } from './hostWeights.js';

/** y = x Wᵀ + b for x (rows, in): one Gemm on the stored [out, in] weight. `name` names the initializers. */
export function linear(b: GraphBuilder, x: Value, l: Linear, name: string, activation?: 'Relu' | 'Tanh'): Value {
  const w = b.init(`${name}.weight`, l.w, [l.out, l.in]);
  const bias = b.init(`${name}.bias`, l.b, [l.out]);
  const y = b.op('Gemm', [x, w, bias], { transB: int(1) });
  return activation ? b.op(activation, [y]) : y;
}

/**
 * x (..., in) times a matrix (in, out) plus a bias, as one Gemm over the flattened rows, back to (..., out);
 * `transB`: the matrix is given as (out, in).
 */
export function affineLast(
  b: GraphBuilder,
  x: Value,
  m: Value,
  bias: Value,
  [inDim, outDim]: [number, number],
  o: { transB?: boolean; activation?: 'Relu' | 'Tanh' } = {},
): Value {
  const lead = b.op('Shape', [x], { end: int(-1) });
  let y = b.op('Gemm', [reshape(b, x, [-1, inDim]), m, bias], o.transB ? { transB: int(1) } : {});
  if (o.activation) y = b.op(o.activation, [y]);
  return reshape(b, y, [lead, outDim]);
}

/** ops.ts's linear: the Linear on the last axis of x of any rank (..., in) -> (..., out), as one Gemm. */
export function linearLast(b: GraphBuilder, x: Value, l: Linear, name: string, activation?: 'Relu' | 'Tanh'): Value {
  const w = b.init(`${name}.weight`, l.w, [l.out, l.in]);
  const bias = b.init(`${name}.bias`, l.b, [l.out]);
  return affineLast(b, x, w, bias, [l.in, l.out], { transB: true, activation });
}

/** x / (‖x‖₂ + 1e-8) over the last axis (ops.ts's l2norm: the eps is added to the norm, not clamped). */
export function l2norm(b: GraphBuilder, x: Value): Value {
  const norm = b.op('ReduceL2', [x], { axes: ints([-1]), keepdims: int(1) });
  return b.op('Div', [x, b.op('Add', [norm, b.scalar(NORM_EPS)])]);
}

/** Dimensions start..end-1 of x as a 1-D int64 tensor. */
export function dims(b: GraphBuilder, x: Value, start: number, end = start + 1): Value {
  return b.op('Shape', [x], { start: int(start), end: int(end) });
}

/** Reshape x to a shape made of fixed sizes (numbers, -1 allowed) and 1-D int64 values (dynamic dimensions). */
export function reshape(b: GraphBuilder, x: Value, parts: Array<number | Value>): Value {
  if (parts.every((p) => typeof p === 'number')) return b.op('Reshape', [x, b.i64(parts)]);
  const pieces: Value[] = [];
  let run: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') {
      run.push(p);
      continue;
    }
    if (run.length) pieces.push(b.i64(run));
    run = [];
    pieces.push(p);
  }
  if (run.length) pieces.push(b.i64(run));
  return b.op('Reshape', [x, b.op('Concat', pieces, { axis: int(0) })]);
}

export const unsqueeze = (b: GraphBuilder, x: Value, axes: number[]) => b.op('Unsqueeze', [x, b.i64(axes)]);
export const squeeze = (b: GraphBuilder, x: Value, axes: number[]) => b.op('Squeeze', [x, b.i64(axes)]);
export const reduceSum = (b: GraphBuilder, x: Value, axes: number[], keepdims: boolean) =>
  b.op('ReduceSum', [x, b.i64(axes)], { keepdims: int(keepdims ? 1 : 0) });
export const cast = (b: GraphBuilder, x: Value, to: ElemType) => b.op('Cast', [x], { to: int(DATA_TYPE[to]) });
export const leakyRelu = (b: GraphBuilder, x: Value, slope: number) => b.op('LeakyRelu', [x], { alpha: float(slope) });
export const softmax = (b: GraphBuilder, x: Value) => b.op('Softmax', [x], { axis: int(-1) });

/**
 * The valid positions of each row: (n, len) bool, true where position < count[row]. `count` is 1-D int64 (n),
 * `len` a 1-D int64 value of one element.
 */
export function validMask(b: GraphBuilder, count: Value, len: Value): Value {
  const zero = b.constant([0], [], 'int64');
  const one = b.constant([1], [], 'int64');
  const pos = b.op('Range', [zero, squeeze(b, len, [0]), one]); // (len)
  return b.op('Less', [unsqueeze(b, pos, [0]), unsqueeze(b, count, [1])]);
}

/** 0 where valid, -1e9 where padded (ops.ts's additiveMask: exp underflows to exactly 0), float32. */
export function additiveMask(b: GraphBuilder, valid: Value): Value {
  return b.op('Where', [valid, b.scalar(0), b.scalar(-1e9)]);
}
