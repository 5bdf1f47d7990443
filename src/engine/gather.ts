// Row gathers with gradients that tfjs-wasm can run: tf.gather's own gradient needs UnsortedSegmentSum, which
// tfjs-wasm lacks (and which is very slow on cpu).
import * as tf from '@tensorflow/tfjs';
import type { CustomFn } from './tape.js';

/**
 * Rows of a 2-D tensor in the order `perm`, where perm is its own inverse (a per-sequence reversal).
 * tf.gather's gradient needs UnsortedSegmentSum, which tfjs-wasm lacks; for an involution the gradient is
 * the same gather.
 */
export function permuteRowsInvolution(x: tf.Tensor2D, perm: tf.Tensor1D): tf.Tensor2D {
  // the index tensor is saved with the op, so that it outlives the forward scope
  const f = tf.customGrad(((a: tf.Tensor, save: tf.GradSaveFunc) => {
    save([perm]);
    return {
      value: tf.gather(a, perm),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [tf.gather(dy as tf.Tensor, saved[0])],
    };
  }) as unknown as CustomFn);
  return f(x) as tf.Tensor2D;
}

/** Embedding lookup whose gradient is a scatter-add (tf.scatterND sums duplicate indices). */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([ids]);
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => [tf.scatterND(saved[0].reshape([-1, 1]), dy as tf.Tensor, table.shape)]),
    };
  }) as unknown as CustomFn);
  return f(table) as tf.Tensor2D;
}
