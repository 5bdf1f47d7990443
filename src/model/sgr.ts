// SGR, the similarity graph reasoning module (SPEC §4.4): the nodes of a pair are its global similarity vector
// (node 0) and its caption's word-level ones; each of sgr_step steps lets every node attend to the others and
// updates it, x' = relu(W (softmax(q xᵀ) x) + b) with q = Wq x + bq, k = Wk x + bk; the score reads node 0.
//
// Two rewrites that change no value: the query and key maps fold into one S×S matrix,
// q·kᵀ = x (Wqᵀ Wk) xᵀ + 1 (bq Wk) xᵀ + (terms constant along each softmax row, which cancel), a third less
// work; and the last step computes node 0 alone, the only row the score reads (the others are dead work).
import * as tf from '@tensorflow/tfjs';
import { graphAttention, type NodeLayout } from '../engine/graphAttention.js';
import { affine, mm } from '../engine/matmul.js';
import { linear } from './ops.js';
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
  const P = nImg * nCap;
  let x = nodes.reshape([P, N, S]) as tf.Tensor3D;
  for (let s = 0; s < steps; s++) {
    const R = s === steps - 1 ? 1 : N; // the last step: node 0's query alone
    const queries = R === N ? x : (x.slice([0, 0, 0], [P, 1, S]) as tf.Tensor3D);
    const { qk, qb } = queryKey(w, s, S);
    const q = affine(queries.reshape([P * R, S]) as tf.Tensor2D, qk, { bias: qb }).reshape([P, R, S]) as tf.Tensor3D;
    const agg = graphAttention(q, x, layout);
    x = linear(agg, w, `sim_enc.SGR_module.${s}.sim_graph_w`, { relu: true }) as tf.Tensor3D;
    if (dbg) dbg(`SGR_module.${s}`, x.reshape([nImg, nCap, R, S]));
  }
  return x.reshape([nImg, nCap, S]) as tf.Tensor3D;
}
