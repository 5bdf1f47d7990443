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

/** d(x, QK, qb, W, b) from dL/dy (P, R, S). */
export function stepBackward(dy: tf.Tensor3D, s: StepSaved, layout: NodeLayout): tf.Tensor[] {
  return tf.tidy(() => {
    const [P, R, S] = s.q.shape;
    const N = s.x.shape[1];
    const flat = (t: tf.Tensor) => t.reshape([-1, S]) as tf.Tensor2D;
    // y = relu(agg Wᵀ + b)
    const g = flat(tf.mul(dy, tf.step(s.y)));
    const db = tf.sum(g, 0);
    const agg = attendForward(s.q, s.x, layout).agg;
    const dW = tf.matMul(tf.transpose(g), flat(agg));
    agg.dispose();
    const dAgg = tf.matMul(g, s.w).reshape([P, R, S]) as tf.Tensor3D;
    g.dispose();
    // agg = softmax(q xᵀ) x
    const { dq, dx: dxAttention } = attendBackward(s.q, s.x, s.E, dAgg, layout);
    dAgg.dispose();
    // q = x_R QK + qb
    const queries = flat(R === N ? s.x : tf.slice(s.x, [0, 0, 0], [P, 1, S]));
    const dq2 = flat(dq);
    const dqk = tf.matMul(tf.transpose(queries), dq2);
    const dqb = tf.sum(dq2, 0);
    const dxQuery = tf.matMul(dq2, tf.transpose(s.qk)).reshape([P, R, S]);
    dq.dispose();
    const dx = tf.add(
      dxAttention,
      R === N
        ? dxQuery
        : tf.pad(dxQuery, [
            [0, 0],
            [0, N - R],
            [0, 0],
          ]),
    );
    return [dx, dqk, dqb, dW, db];
  });
}
