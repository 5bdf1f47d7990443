// Small building blocks of the model's math: the Linear, the two normalisations, dropout and the softmax mask.
import * as tf from '@tensorflow/tfjs';
import { NORM_EPS } from './config.js';
import type { Weights } from './weights.js';
import { affineW } from '../ops/matmul.js';
import { l2normalize } from '../ops/norm.js';

/**
 * The Linear `prefix` of `w` (weight [out, in], bias) applied to x of any rank (..., in), with an optional relu
 * after it. `inputGrad` false when x is data, not a function of the parameters (the image features).
 */
export function linear(
  x: tf.Tensor,
  w: Weights,
  prefix: string,
  o: { relu?: boolean; inputGrad?: boolean } = {},
): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  const wT = w.wT(prefix);
  const y = affineW(x.reshape([-1, inDim]), w.t(`${prefix}.weight`) as tf.Tensor2D, wT, {
    bias: w.b(prefix),
    relu: o.relu,
    inputGrad: o.inputGrad,
  });
  return y.reshape([...lead, wT.shape[1]]);
}

/**
 * x / (‖x‖₂ + 1e-8) along the last axis (the reference adds the eps to the norm; it does not clamp).
 * The 1e-30 under the root changes no float32 value of a non-zero norm; it keeps the gradient of an
 * all-zero vector (a padded token) finite instead of 0·∞ = NaN. (PyTorch gets NaN there too, but packed
 * sequences drop the padded positions before it can spread.)
 */
export function l2norm(x: tf.Tensor): tf.Tensor {
  return l2normalize(x, NORM_EPS); // over the last axis, with a gradient that keeps only the output (ops/norm.ts)
}

/** x / (Σ|x| + 1e-8) along `axis`. */
export function l1norm(x: tf.Tensor, axis = -1): tf.Tensor {
  return tf.div(x, tf.add(tf.sum(tf.abs(x), axis, true), NORM_EPS));
}

/**
 * Where x's dropout mask lies in a larger one: x is the block at `begin` (x.shape long) of a tensor shaped `whole`
 * (one thread's share of a batch's captions), and its mask is that block of the whole tensor's mask.
 */
export interface MaskWindow {
  begin: number[];
  whole: number[];
}

/**
 * Inverted dropout with a mask from a seeded generator (reproducible across resume). rate 0 = identity. In a
 * `window`, the mask is cut from the whole tensor's: tfjs draws a mask's numbers one after the other in row-major
 * order, so only the whole's first begin[0] + x.shape[0] rows are drawn.
 */
export function dropout(x: tf.Tensor, rate: number, seed: number | null, window?: MaskWindow): tf.Tensor {
  if (rate <= 0 || seed === null) return x;
  const mask = tf.tidy(() => {
    const u = window
      ? tf.slice(
          tf.randomUniform([window.begin[0] + x.shape[0], ...window.whole.slice(1)], 0, 1, 'float32', seed),
          window.begin,
          x.shape,
        )
      : tf.randomUniform(x.shape, 0, 1, 'float32', seed);
    return tf.mul(tf.cast(tf.greaterEqual(u, rate), 'float32'), 1 / (1 - rate));
  });
  return tf.mul(x, mask);
}

/** Additive mask for a softmax: 0 where valid, -1e9 where padded (exp underflows to exactly 0). */
export function additiveMask(valid: tf.Tensor): tf.Tensor {
  return tf.mul(tf.sub(1, valid), -1e9);
}
