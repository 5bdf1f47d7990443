// 2-D products whose gradients stay on the fast kernel. On tfjs-wasm only a plain 2-D `a @ b` takes the XNNPACK
// path (~30-40 GFLOP/s); tfjs' own matMul gradient uses transposeA/B flags, which fall to a generic kernel
// 15-70x slower. These transpose explicitly in their gradients (same values).
import * as tf from '@tensorflow/tfjs';
import type { CustomFn } from './tape.js';

/** Plain 2-D product (n,k)@(k,m) whose gradient uses explicit transposes (fast on wasm, same values). */
export const mm = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    // tfjs runs a customGrad's gradient outside any tidy scope: without this one the transposed copies
    // would live until the whole backward pass ends (GiBs for the GRU's recurrent weight, step by step).
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const g = dy as tf.Tensor2D;
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.matMul(g, tf.transpose(sb)), tf.matMul(tf.transpose(sa), g)];
      }),
  };
}) as unknown as CustomFn) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * x @ wT where `w` (out, in) is the parameter in PyTorch's layout and `wT` its transpose (in, out), already made.
 * The gradient goes to `w` directly: dx = dy @ w needs no transpose of the weight (the GRU's recurrent step
 * would otherwise transpose its 1024x3072 matrix at every step of the backward pass), and dw = dyᵀ @ x
 * transposes the usually smaller dy. `wT` is not differentiated. `inputGrad` false: x is data (the image
 * features), its gradient is never used, so a zero tensor replaces a product as large as the forward.
 */
export function mmW(x: tf.Tensor2D, w: tf.Tensor2D, wT: tf.Tensor2D, inputGrad = true): tf.Tensor2D {
  const f = tf.customGrad(((a: tf.Tensor, wt: tf.Tensor, save: tf.GradSaveFunc) => {
    save([a, wt]);
    return {
      value: tf.matMul(a as tf.Tensor2D, wT),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const g = dy as tf.Tensor2D;
          const [sa, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
          return [inputGrad ? tf.matMul(g, sw) : tf.zerosLike(sa), tf.matMul(tf.transpose(g), sa)];
        }),
    };
  }) as unknown as CustomFn);
  return f(x, w) as tf.Tensor2D;
}
