// SGR's graph reasoning steps (SPEC §4.4) over the similarity nodes of P image-caption pairs, with a
// hand-written gradient for training. tfjs' own gradient of the per-pair (N x N) products uses batched
// matMuls with transposeA, tfjs-wasm's slowest kernel (~0.7 GFLOP/s), and keeps every intermediate of
// every step; this one transposes the small per-pair matrices explicitly and keeps, per step, only the
// step's input, its attention (N x N) and its aggregate.
import * as tf from '@tensorflow/tfjs';
import type { CustomFn } from '../engine/tape.js';

/** The query-key map folded into one matrix and vector: Q·Kᵀ = N (Wqᵀ Wk) Nᵀ + 1 (bq Wk) Nᵀ + row constants. */
export interface StepWeights {
  qk: tf.Tensor2D; // (S, S) = Wqᵀ Wk
  qb: tf.Tensor1D; // (S) = bq Wk
  w: tf.Tensor2D; // (S, S) sim_graph_w.weight, [out, in]
  wT: tf.Tensor2D; // its transpose (not differentiated)
  b: tf.Tensor1D; // (S) sim_graph_w.bias
}

/** Pairs laid out image-major: P = nImg · nCap, each with N nodes. */
export interface PairLayout {
  nImg: number;
  nCap: number;
}

/** One step's attention and aggregate: edges = softmax(q xᵀ + mask), agg = edges x. */
function attend(x: tf.Tensor3D, sw: StepWeights, mask: tf.Tensor, { nImg, nCap }: PairLayout) {
  const [P, N, S] = x.shape;
  const q = tf.add(tf.matMul(x.reshape([P * N, S]) as tf.Tensor2D, sw.qk), sw.qb).reshape([P, N, S]) as tf.Tensor3D;
  const logits = tf.add(tf.matMul(q, x, false, true).reshape([nImg, nCap, N, N]), mask);
  const edges = tf.softmax(logits).reshape([P, N, N]) as tf.Tensor3D;
  return { edges, agg: tf.matMul(edges, x) as tf.Tensor3D };
}

/** The step's output relu(agg Wᵀ + b), (P, N, S). */
function project(agg: tf.Tensor3D, sw: StepWeights): tf.Tensor3D {
  const [P, N, S] = agg.shape;
  return tf
    .relu(tf.add(tf.matMul(agg.reshape([P * N, S]) as tf.Tensor2D, sw.wT), sw.b))
    .reshape([P, N, S]) as tf.Tensor3D;
}

/** One reasoning step without a gradient: relu(Linear(agg)). `mask` (1, nCap, 1, N) is 0 / -1e9 per key node. */
export function graphStep(x: tf.Tensor3D, sw: StepWeights, mask: tf.Tensor, layout: PairLayout): tf.Tensor3D {
  return project(attend(x, sw, mask, layout).agg, sw);
}

/** The same step, differentiable with respect to x, qk, qb, w and b through a hand-written gradient. */
export function graphStepTrain(x: tf.Tensor3D, sw: StepWeights, mask: tf.Tensor, layout: PairLayout): tf.Tensor3D {
  const [P, N, S] = x.shape;
  const f = tf.customGrad(((
    xi: tf.Tensor,
    qk: tf.Tensor,
    qb: tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor,
    save: tf.GradSaveFunc,
  ) => {
    const x3 = xi as tf.Tensor3D;
    const { edges, agg, y } = tf.tidy(() => {
      const inner = { ...sw, qk: qk as tf.Tensor2D, qb: qb as tf.Tensor1D, b: b as tf.Tensor1D };
      const r = attend(x3, inner, mask, layout);
      return { edges: r.edges, agg: r.agg, y: project(r.agg, inner) };
    }) as unknown as { edges: tf.Tensor3D; agg: tf.Tensor3D; y: tf.Tensor3D };
    save([x3, qk, qb, w, edges, agg, y]);
    tf.dispose([edges, agg]); // save() holds its own references
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sx, sqk, sqb, sw2, se, sa, sy] = saved as [
            tf.Tensor3D,
            tf.Tensor2D,
            tf.Tensor1D,
            tf.Tensor2D,
            tf.Tensor3D,
            tf.Tensor3D,
            tf.Tensor3D,
          ];
          const x2 = sx.reshape([P * N, S]) as tf.Tensor2D;
          // y = relu(agg Wᵀ + b)
          const dh = tf.where(tf.greater(sy, 0), dy as tf.Tensor, tf.zerosLike(sy)).reshape([P * N, S]) as tf.Tensor2D;
          const db = tf.sum(dh, 0);
          const dw = tf.matMul(tf.transpose(dh), sa.reshape([P * N, S]) as tf.Tensor2D);
          const dAgg = tf.matMul(dh, sw2).reshape([P, N, S]) as tf.Tensor3D;
          // agg = edges x
          const dEdges = tf.matMul(dAgg, tf.transpose(sx, [0, 2, 1]));
          let dx: tf.Tensor = tf.matMul(tf.transpose(se, [0, 2, 1]), dAgg);
          // edges = softmax(logits)
          const ye = tf.mul(dEdges, se);
          const dLogits = tf.sub(ye, tf.mul(tf.sum(ye, -1, true), se)) as tf.Tensor3D;
          // logits = q xᵀ, q = x qk + qb (recomputed: one 2-D product)
          const q = tf.add(tf.matMul(x2, sqk), sqb).reshape([P, N, S]) as tf.Tensor3D;
          const dq = tf.matMul(dLogits, sx).reshape([P * N, S]) as tf.Tensor2D;
          dx = tf.add(dx, tf.matMul(tf.transpose(dLogits, [0, 2, 1]), q));
          const dqk = tf.matMul(tf.transpose(x2), dq);
          const dqb = tf.sum(dq, 0);
          dx = tf.add(dx, tf.matMul(dq, tf.transpose(sqk)).reshape([P, N, S]));
          return [dx, dqk, dqb, dw, db];
        }),
    };
  }) as unknown as CustomFn);
  return f(x, sw.qk, sw.qb, sw.w, sw.b) as tf.Tensor3D;
}
