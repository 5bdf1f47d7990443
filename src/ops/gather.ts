// Row gathers and scatters with gradients that tfjs-wasm can run: tf.gather's own gradient needs
// UnsortedSegmentSum, which tfjs-wasm lacks (and which is very slow on cpu); a scatter-add (tf.scatterND, which
// sums duplicate indices) is the same gradient.
import * as tf from '@tensorflow/tfjs';
import type { CustomFn } from './tape.js';

/** Rows `idx` of a 2-D tensor (an embedding lookup, a packing); the gradient scatter-adds back. */
export function gatherRows(x: tf.Tensor2D, idx: tf.Tensor1D): tf.Tensor2D {
  const shape = x.shape;
  const f = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([idx]);
    return {
      value: tf.gather(t, idx),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => [tf.scatterND(saved[0].reshape([-1, 1]), dy as tf.Tensor, shape)]),
    };
  }) as unknown as CustomFn);
  return f(x) as tf.Tensor2D;
}

/** A (rows, ·) tensor whose row idx[i] is p's row i, zeros elsewhere (idx without repeats); the gradient gathers. */
export function scatterRows(p: tf.Tensor2D, idx: tf.Tensor1D, rows: number): tf.Tensor2D {
  const f = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([idx]);
    return {
      value: tf.scatterND(idx.reshape([-1, 1]), t, [rows, t.shape[1]!]),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [tf.gather(dy as tf.Tensor, saved[0])],
    };
  }) as unknown as CustomFn);
  return f(p) as tf.Tensor2D;
}
