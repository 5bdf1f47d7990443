// The l2 normalisation y = x / (‖x‖ + eps) along the last axis with a hand-written gradient that keeps only its
// output and two numbers per row. tfjs' own gradient of the same few ops keeps x, x², the norm and the output:
// at the similarity nodes of a batch-128 step that would be ~3 vectors per node per pair instead of 1.
import * as tf from '@tensorflow/tfjs';
import type { CustomFn } from './tape.js';

/**
 * x / (r + eps), r = sqrt(Σ x² + 1e-30) over the last axis. With d = r + eps:
 * dx = dy / d - y (Σ dy ⊙ y) / r (the 1e-30 keeps r > 0 for an all-zero row, whose y and dx are 0).
 */
export function l2normalize(x: tf.Tensor, eps: number): tf.Tensor {
  const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    const r = tf.sqrt(tf.add(tf.sum(tf.square(xi), -1, true), 1e-30));
    const d = tf.add(r, eps);
    const y = tf.div(xi, d);
    save([y, r, d]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const g = dy as tf.Tensor;
          const [sy, sr, sd] = saved;
          return [tf.sub(tf.div(g, sd), tf.mul(sy, tf.div(tf.sum(tf.mul(g, sy), -1, true), sr)))];
        }),
    };
  }) as unknown as CustomFn);
  return f(x);
}
