// VisualSA and TextSA: self-attention pooling to one global vector per image / caption.
import * as tf from '@tensorflow/tfjs';
import { additiveMask, l2norm, linear } from './ops.js';
import { batchNorm, type BnBatchStats } from './batchnorm.js';
import { maybeCaptionDropout, maybeDropout, tokenMask, type RunMode } from './encoders.js';
import type { Weights } from './weights.js';

const V = 'sim_enc.v_global_w';
const T = 'sim_enc.t_global_w';

/** V (nImg, 36, D) l2-normed regions -> v̄ (nImg, D). In training also the two BatchNorms' batch statistics. */
export function visualGlobal(
  w: Weights,
  regions: tf.Tensor3D,
  mode: RunMode,
): { vGlobal: tf.Tensor2D; bnStats: BnBatchStats[] } {
  const bnStats: BnBatchStats[] = [];
  // local branch: Linear -> BatchNorm1d(36) over the region slots -> tanh -> dropout
  const l0 = linear(regions, w, `${V}.embedding_local.0`);
  const l1 = batchNorm(l0, w, `${V}.embedding_local.1`, 1, mode.training);
  if (l1.stats) bnStats.push(l1.stats);
  const local = maybeDropout(tf.tanh(l1.y), mode, `${V}.local`);
  // global branch on the mean region: Linear -> BatchNorm1d(D) -> tanh -> dropout
  const raw = tf.mean(regions, 1);
  const g0 = linear(raw, w, `${V}.embedding_global.0`);
  const g1 = batchNorm(g0, w, `${V}.embedding_global.1`, 1, mode.training);
  if (g1.stats) bnStats.push(g1.stats);
  const glob = maybeDropout(tf.tanh(g1.y), mode, `${V}.global`);
  const common = tf.mul(local, tf.expandDims(glob, 1));
  const score = linear(common, w, `${V}.embedding_common.0`).squeeze([2]);
  const weights = tf.softmax(score); // over the 36 regions
  const pooled = tf.sum(tf.mul(tf.expandDims(weights, 2), regions), 1);
  return { vGlobal: l2norm(pooled) as tf.Tensor2D, bnStats };
}

/**
 * words (nCap, Lp, D), zero-padded -> t̄ (nCap, D); the mean and softmax run over each caption's own tokens. Each
 * caption is pooled on its own (no batch statistics), so a share of a batch gives the whole batch's rows.
 */
export function textGlobal(w: Weights, words: tf.Tensor3D, lengths: number[], mode: RunMode): tf.Tensor2D {
  const Lp = words.shape[1];
  const mask = tokenMask(lengths, Lp);
  const local = maybeCaptionDropout(tf.tanh(linear(words, w, `${T}.embedding_local.0`)), mode, `${T}.local`);
  const raw = tf.div(tf.sum(words, 1), tf.tensor2d(lengths, [lengths.length, 1]));
  const glob = maybeCaptionDropout(tf.tanh(linear(raw, w, `${T}.embedding_global.0`)), mode, `${T}.global`);
  const common = tf.mul(local, tf.expandDims(glob, 1));
  const score = linear(common, w, `${T}.embedding_common.0`).squeeze([2]);
  const weights = tf.softmax(tf.add(score, additiveMask(mask)));
  const pooled = tf.sum(tf.mul(tf.expandDims(weights, 2), words), 1);
  return l2norm(pooled) as tf.Tensor2D;
}
