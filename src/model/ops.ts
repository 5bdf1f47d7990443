// Small tf building blocks, shaped for the fast kernels. On tfjs-wasm only a plain 2-D `a @ b` takes the
// XNNPACK path (~30-40 GFLOP/s); tfjs' own matMul gradient uses transposeA/B flags, which fall to a generic
// kernel 15-70x slower. `mm` therefore transposes explicitly in its gradient.
import * as tf from '@tensorflow/tfjs';
import { NORM_EPS } from './config.js';
import type { Weights } from './weights.js';

/** The function type tf.customGrad takes (its typings want a fixed arity; ours vary). */
export type CustomFn = Parameters<typeof tf.customGrad>[0];

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

/**
 * The Linear `prefix` of `w` (weight [out, in], optional bias) applied to x of any rank (..., in).
 * `inputGrad` false when x is data, not a function of the parameters (see mmW).
 */
export function linear(x: tf.Tensor, w: Weights, prefix: string, bias = true, inputGrad = true): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  const wT = w.wT(prefix);
  const y = mmW(x.reshape([-1, inDim]) as tf.Tensor2D, w.t(`${prefix}.weight`) as tf.Tensor2D, wT, inputGrad);
  const yb = bias ? tf.add(y, w.b(prefix)) : y;
  return yb.reshape([...lead, wT.shape[1]]);
}

/**
 * x / (‖x‖₂ + 1e-8) along `axis` (the reference adds the eps to the norm; it does not clamp).
 * The 1e-30 under the root changes no float32 value of a non-zero norm; it keeps the gradient of an
 * all-zero vector (a padded token) finite instead of 0·∞ = NaN. (PyTorch gets NaN there too, but packed
 * sequences drop the padded positions before it can spread.)
 */
export function l2norm(x: tf.Tensor, axis = -1): tf.Tensor {
  return tf.div(x, tf.add(tf.sqrt(tf.add(tf.sum(tf.square(x), axis, true), 1e-30)), NORM_EPS));
}

/** x / (Σ|x| + 1e-8) along `axis`. */
export function l1norm(x: tf.Tensor, axis = -1): tf.Tensor {
  return tf.div(x, tf.add(tf.sum(tf.abs(x), axis, true), NORM_EPS));
}

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

/** Inverted dropout with a mask from a seeded generator (reproducible across resume). rate 0 = identity. */
export function dropout(x: tf.Tensor, rate: number, seed: number | null): tf.Tensor {
  if (rate <= 0 || seed === null) return x;
  const keep = tf.cast(tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', seed), rate), 'float32');
  return tf.mul(x, tf.mul(keep, 1 / (1 - rate)));
}

/** Additive mask for a softmax: 0 where valid, -1e9 where padded (exp underflows to exactly 0). */
export function additiveMask(valid: tf.Tensor): tf.Tensor {
  return tf.mul(tf.sub(1, valid), -1e9);
}
