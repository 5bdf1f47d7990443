// SGR, the similarity graph reasoning module: the nodes of a pair are its global similarity vector
// (node 0) and its caption's word-level ones; each of sgr_step steps lets every node attend to the others and
// updates it, x' = relu(W (softmax(q xᵀ) x) + b) with q = Wq x + bq, k = Wk x + bk; the score reads node 0.
//
// Two rewrites that change no value: the query and key maps fold into one S×S matrix,
// q·kᵀ = x (Wqᵀ Wk) xᵀ + 1 (bq Wk) xᵀ + (terms constant along each softmax row, which cancel), a third less
// work; and the last step computes node 0 alone, the only row the score reads (the others are dead work).
import * as tf from '@tensorflow/tfjs';
import { attendForward, type NodeLayout } from '../engine/graphAttention.js';
import type { CustomFn } from '../engine/tape.js';
import { stepBackward, type StepSaved } from './sgr.grad.js';
import { fusedProduct, mm } from '../engine/matmul.js';
import type { Weights } from './weights.js';
import type { DebugHook } from './similarity.js';

/** The folded query-key map of step s: (Wqᵀ Wk, bq Wk). */
function queryKey(w: Weights, s: number, S: number): { qk: tf.Tensor2D; qb: tf.Tensor1D } {
  const pre = `sim_enc.SGR_module.${s}`;
  const key = w.t(`${pre}.graph_key_w.weight`) as tf.Tensor2D;
  return {
    qk: w.derived(`${pre}.qk`, () => mm(w.wT(`${pre}.graph_query_w`), key)) as tf.Tensor2D,
    qb: w.derived(`${pre}.qb`, () =>
      mm(w.b(`${pre}.graph_query_w`).reshape([1, S]) as tf.Tensor2D, key).reshape([S]),
    ) as tf.Tensor1D,
  };
}

/**
 * One reasoning step on the nodes x (P, N, S): q = x_R QK + qb for the R query nodes (all, or node 0 alone),
 * agg = softmax(q xᵀ) x over each pair's valid nodes, y = relu(W agg + b), (P, R, S). Its gradient is
 * sgr.grad.ts's (with respect to x, QK, qb, W, b).
 */
function reasoningStep(w: Weights, s: number, x: tf.Tensor3D, R: number, layout: NodeLayout): tf.Tensor3D {
  const [P, , S] = x.shape;
  const pre = `sim_enc.SGR_module.${s}.sim_graph_w`;
  const { qk, qb } = queryKey(w, s, S);
  const W = w.t(`${pre}.weight`) as tf.Tensor2D;
  const WT = w.wT(pre);
  const f = tf.customGrad(((
    xi: tf.Tensor,
    qki: tf.Tensor,
    qbi: tf.Tensor,
    Wi: tf.Tensor,
    b: tf.Tensor,
    save: tf.GradSaveFunc,
  ) => {
    const x3 = xi as tf.Tensor3D;
    const queries = R === x3.shape[1] ? x3 : tf.slice(x3, [0, 0, 0], [P, 1, S]);
    const flat = (t: tf.Tensor) => t.reshape([-1, S]) as tf.Tensor2D;
    const q = fusedProduct(flat(queries), qki as tf.Tensor2D, qbi as tf.Tensor1D).reshape([P, R, S]) as tf.Tensor3D;
    const { E, agg } = attendForward(q, x3, layout);
    const y = fusedProduct(flat(agg), WT, b as tf.Tensor1D, true).reshape([P, R, S]);
    save([x3, q, E, y as tf.Tensor3D, qki, Wi, layout.count]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, sq, sE, sy, sqk, sW, count] = saved;
        const st = { x: sx, q: sq, E: sE, y: sy, qk: sqk, w: sW } as StepSaved;
        return stepBackward(dy as tf.Tensor3D, st, { nCap: layout.nCap, count: count as tf.Tensor1D });
      },
    };
  }) as unknown as CustomFn);
  return f(x, qk, qb, W, w.b(pre)) as tf.Tensor3D;
}

/**
 * sgr_step reasoning steps over the nodes (nImg, nCap, N, S) of every image-caption pair (image-major); returns
 * node 0 after the last step, (nImg, nCap, S).
 * @param layout the valid node count of each caption (its words and the global node)
 */
export function graphReasoning(
  w: Weights,
  steps: number,
  nodes: tf.Tensor4D,
  layout: NodeLayout,
  dbg?: DebugHook,
): tf.Tensor3D {
  const [nImg, nCap, N, S] = nodes.shape;
  let x = nodes.reshape([nImg * nCap, N, S]) as tf.Tensor3D;
  for (let s = 0; s < steps; s++) {
    const R = s === steps - 1 ? 1 : N; // the last step: node 0's query alone
    x = reasoningStep(w, s, x, R, layout);
    if (dbg) dbg(`SGR_module.${s}`, x.reshape([nImg, nCap, R, S]));
  }
  return x.reshape([nImg, nCap, S]) as tf.Tensor3D;
}
