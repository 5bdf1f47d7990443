// The gradient of one SGR reasoning step (sgr.ts), written by hand: y = relu(W agg + b), agg = softmax(q xᵀ) x
// over each pair's valid nodes, q = x_R QK + qb (x_R: every node, or node 0 alone). The forward pass keeps x, q,
// the attention E and y; agg is recomputed here from them (one attention pass, ~N/S of the step's products) rather
// than kept, and each large intermediate is freed as soon as it has been used, so that a batch-128 step keeps and
// moves fewer (P·N, S) tensors at once than tfjs' gradients of the separate ops did.
import * as tf from '@tensorflow/tfjs';
import { attendBackward, attendForward, type NodeLayout } from '../engine/graphAttention.js';

/** What the step's forward pass keeps: its input x (P, N, S), queries q (P, R, S), attention E (P, R, N), output y. */
export interface StepSaved {
  x: tf.Tensor3D;
  q: tf.Tensor3D;
  E: tf.Tensor3D;
  y: tf.Tensor3D;
  qk: tf.Tensor2D; // (S, S)
  w: tf.Tensor2D; // (S, S) sim_graph_w.weight, [out, in]
}

/**
 * d(x, QK, qb, W, b) from dL/dy (P, R, S). Each (P, ·, S) temporary is freed right after its last use (a tidy
 * would hold all ~10 of them to the end): the step's backward then adds ~4 of them to the heap at once, not ~10.
 */
export function stepBackward(dy: tf.Tensor3D, s: StepSaved, layout: NodeLayout): tf.Tensor[] {
  return tf.tidy(() => {
    const [P, R, S] = s.q.shape;
    const N = s.x.shape[1];
    const flat = (t: tf.Tensor) => t.reshape([-1, S]) as tf.Tensor2D;
    const free = (...ts: tf.Tensor[]) => tf.dispose(ts);
    // y = relu(agg Wᵀ + b)
    const mask = tf.step(s.y);
    const g = flat(tf.mul(dy, mask));
    free(mask);
    const db = tf.sum(g, 0);
    const agg = attendForward(s.q, s.x, layout).agg;
    const gT = tf.transpose(g);
    const dW = tf.matMul(gT, flat(agg));
    free(gT, agg);
    const dAgg = tf.matMul(g, s.w).reshape([P, R, S]) as tf.Tensor3D;
    free(g);
    // agg = softmax(q xᵀ) x
    const { dq, dx: dxAttention } = attendBackward(s.q, s.x, s.E, dAgg, layout);
    free(dAgg);
    // q = x_R QK + qb
    const queries = R === N ? s.x : tf.slice(s.x, [0, 0, 0], [P, 1, S]);
    const queriesT = tf.transpose(flat(queries));
    const dq2 = flat(dq);
    const dqk = tf.matMul(queriesT, dq2);
    free(queriesT);
    const dqb = tf.sum(dq2, 0);
    const dxQuery = tf.matMul(dq2, tf.transpose(s.qk)).reshape([P, R, S]);
    free(dq, dq2);
    const dxQueryN =
      R === N
        ? dxQuery
        : tf.pad(dxQuery, [
            [0, 0],
            [0, N - R],
            [0, 0],
          ]);
    const dx = tf.add(dxAttention, dxQueryN);
    free(dxAttention, dxQuery, dxQueryN);
    return [dx, dqk, dqb, dW, db];
  });
}
