// BatchNorm1d as PyTorch computes it: batch statistics (biased variance) in training, running statistics
// in eval. Running-stat updates are returned to the caller (they are not part of the differentiated graph).
import * as tf from '@tensorflow/tfjs';
import { BN_EPS } from './config.js';
import type { Weights } from './weights.js';

export interface BnBatchStats {
  prefix: string; // state_dict prefix, e.g. sim_enc.v_global_w.embedding_local.1
  mean: tf.Tensor1D; // per channel
  varUnbiased: tf.Tensor1D; // per channel, n/(n-1) times the biased variance (what PyTorch's running_var takes)
}

/**
 * Normalise x over `reduceAxes`, with channels along `channelAxis` (all other axes are reduced).
 * Returns the output and, in training, the batch statistics for the running update.
 */
export function batchNorm(
  x: tf.Tensor,
  w: Weights,
  prefix: string,
  channelAxis: number,
  training: boolean,
): { y: tf.Tensor; stats?: BnBatchStats } {
  const rank = x.shape.length;
  const C = x.shape[channelAxis];
  const bshape = x.shape.map((_, i) => (i === channelAxis ? C : 1));
  const gamma = tf.reshape(w.t(`${prefix}.weight`), bshape);
  const beta = tf.reshape(w.t(`${prefix}.bias`), bshape);
  if (!training) {
    const rm = tf.reshape(w.t(`${prefix}.running_mean`), bshape);
    const rv = tf.reshape(w.t(`${prefix}.running_var`), bshape);
    const y = tf.add(tf.mul(tf.div(tf.sub(x, rm), tf.sqrt(tf.add(rv, BN_EPS))), gamma), beta);
    return { y };
  }
  const axes = [...Array(rank).keys()].filter((a) => a !== channelAxis);
  const n = x.size / C;
  const { mean, variance } = tf.moments(x, axes, true);
  const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, BN_EPS))), gamma), beta);
  const stats: BnBatchStats = {
    prefix,
    mean: tf.reshape<tf.Rank.R1>(mean, [C]),
    varUnbiased: tf.reshape<tf.Rank.R1>(tf.mul(variance, n / Math.max(n - 1, 1)), [C]),
  };
  return { y, stats };
}
