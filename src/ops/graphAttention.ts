// SGR's graph attention with its gradient: for P pairs of N nodes, agg_i = Σ_j softmax_j(q_i · x_j) x_j over each
// pair's valid nodes. On wasm one fused kernel per direction (kernels/vsl_kernels.c: tfjs-wasm's batched matMul
// runs these small per-pair products on its slow generic kernel (docs/backends.md), and the mask, softmax and
// transposes would be passes of their own); elsewhere the same math in tf ops. Padded nodes are neither keys nor
// queries: their rows of agg are 0.
import * as tf from '@tensorflow/tfjs';
import { kernelsOf, ptr, type WasmBackendInternals } from './kernels/module.js';
import type { CustomFn } from './tape.js';

/** Which pairs and nodes: pair p belongs to caption p % nCap, whose `count` (int32, nCap) nodes are valid. */
export interface NodeLayout {
  nCap: number;
  count: tf.Tensor1D;
}

const FWD = 'VslGraphAttend';
const BWD = 'VslGraphAttendGrad';

function shapes(q: tf.TensorInfo, x: tf.TensorInfo) {
  const [P, N, S] = x.shape;
  return { P, R: q.shape[1], N, S };
}

/** Register the two wasm kernels (once per process, after the wasm backend is registered). */
export function registerGraphAttentionKernels(): void {
  if (tf.getKernel(FWD, 'wasm')) return;
  tf.registerKernel({
    kernelName: FWD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as unknown as WasmBackendInternals;
      const { q, x, count } = inputs as { q: tf.TensorInfo; x: tf.TensorInfo; count: tf.TensorInfo };
      const { P, R, N, S } = shapes(q, x);
      const E = b.makeOutput([P, R, N], 'float32');
      const agg = b.makeOutput([P, R, S], 'float32');
      const nCap = (attrs as unknown as { nCap: number }).nCap;
      kernelsOf(b).graph_attend_fwd(P, R, N, S, nCap, ptr(b, count), ptr(b, q), ptr(b, x), ptr(b, E), ptr(b, agg));
      return [E, agg];
    },
  });
  tf.registerKernel({
    kernelName: BWD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as unknown as WasmBackendInternals;
      const { q, x, E, dAgg, count } = inputs as Record<string, tf.TensorInfo>;
      const { P, R, N, S } = shapes(q, x);
      const dL = b.makeOutput([P, R, N], 'float32'); // scratch: the softmax's gradient
      const dq = b.makeOutput([P, R, S], 'float32');
      const dx = b.makeOutput([P, N, S], 'float32');
      const nCap = (attrs as unknown as { nCap: number }).nCap;
      const k = kernelsOf(b);
      k.graph_attend_bwd(
        P,
        R,
        N,
        S,
        nCap,
        ptr(b, count),
        ptr(b, q),
        ptr(b, x),
        ptr(b, E),
        ptr(b, dAgg),
        ptr(b, dL),
        ptr(b, dq),
        ptr(b, dx),
      );
      b.disposeData(dL.dataId);
      return [dq, dx];
    },
  });
}

/** (P, R, 1) 1 for valid query rows, (P, 1, N) 0 / -1e9 for valid / padded keys: the masks of the tf-ops path. */
function masks(layout: NodeLayout, P: number, R: number, N: number): { rows: tf.Tensor; keys: tf.Tensor } {
  const nImg = P / layout.nCap;
  const valid = tf.cast(tf.less(tf.range(0, N, 1, 'int32').expandDims(0), layout.count.expandDims(1)), 'float32'); // (nCap, N)
  const tile = (t: tf.Tensor) => tf.tile(t.expandDims(0), [nImg, 1, 1]).reshape([P, -1]);
  return {
    rows: tile(valid.slice([0, 0], [layout.nCap, R])).reshape([P, R, 1]),
    keys: tf.mul(tf.sub(1, tile(valid)), -1e9).reshape([P, 1, N]),
  };
}

function forwardOps(q: tf.Tensor3D, x: tf.Tensor3D, layout: NodeLayout) {
  const [P, R] = q.shape;
  const N = x.shape[1];
  const m = masks(layout, P, R, N);
  const E = tf.mul<tf.Tensor3D>(tf.softmax(tf.add(tf.matMul(q, x, false, true), m.keys)), m.rows);
  return { E, agg: tf.matMul<tf.Tensor3D>(E, x) };
}

function backwardOps(q: tf.Tensor3D, x: tf.Tensor3D, E: tf.Tensor3D, dAgg: tf.Tensor3D) {
  const dE = tf.matMul(dAgg, x, false, true);
  const dL = tf.mul<tf.Tensor3D>(E, tf.sub(dE, tf.sum(tf.mul(E, dE), -1, true))); // E is 0 off the valid nodes
  const dq = tf.matMul(dL, x);
  const dx = tf.add(tf.matMul(E, dAgg, true, false), tf.matMul(dL, q, true, false));
  return { dq, dx };
}

/** E (P, R, N) and agg (P, R, S) for queries q (P, R, S) over nodes x (P, N, S): the fused kernel on wasm. */
export function attendForward(
  q: tf.Tensor3D,
  x: tf.Tensor3D,
  layout: NodeLayout,
): { E: tf.Tensor3D; agg: tf.Tensor3D } {
  if (tf.getBackend() !== 'wasm') return forwardOps(q, x, layout);
  const [E, agg] = tf.engine().runKernel<tf.Tensor3D[]>(FWD, { q, x, count: layout.count }, { nCap: layout.nCap });
  return { E, agg };
}

/** The gradient of attendForward: dq (P, R, S) and dx (P, N, S) from dAgg (P, R, S). */
export function attendBackward(
  q: tf.Tensor3D,
  x: tf.Tensor3D,
  E: tf.Tensor3D,
  dAgg: tf.Tensor3D,
  layout: NodeLayout,
): { dq: tf.Tensor3D; dx: tf.Tensor3D } {
  if (tf.getBackend() !== 'wasm')
    return tf.tidy(() => backwardOps(q, x, E, dAgg)) as { dq: tf.Tensor3D; dx: tf.Tensor3D };
  const [dq, dx] = tf
    .engine()
    .runKernel<tf.Tensor3D[]>(BWD, { q, x, E, dAgg, count: layout.count }, { nCap: layout.nCap });
  return { dq, dx };
}

/**
 * agg (P, R, S) for queries q (P, R, S) over nodes x (P, N, S); R = N, or 1 for node 0's query alone. Its
 * gradient flows to q and x.
 */
export function graphAttention(q: tf.Tensor3D, x: tf.Tensor3D, layout: NodeLayout): tf.Tensor3D {
  const f = tf.customGrad(((qi: tf.Tensor, xi: tf.Tensor, save: tf.GradSaveFunc) => {
    const { E, agg } = attendForward(qi as tf.Tensor3D, xi as tf.Tensor3D, layout);
    save([qi, xi, E, layout.count]); // the count too: the backward pass runs after the forward's scope freed it
    return {
      value: agg,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sq, sx, sE, count] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor1D];
        const { dq, dx } = attendBackward(sq, sx, sE, dy as tf.Tensor3D, { nCap: layout.nCap, count });
        return [dq, dx];
      },
    };
  }) as unknown as CustomFn);
  return f(q, x) as tf.Tensor3D;
}
