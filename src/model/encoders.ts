// The two encoders (SPEC §3): image regions -> (nImg, 36, D); captions -> (nCap, Lp, D) with a
// bidirectional GRU run with packed-sequence semantics, the two directions averaged.
import * as tf from '@tensorflow/tfjs';
import { DROPOUT, type ModelConfig } from './config.js';
import { dropout, l2norm, linear } from './ops.js';
import { mmW } from '../engine/matmul.js';
import { embeddingLookup, permuteRowsInvolution } from '../engine/gather.js';
import type { Weights } from './weights.js';
import { siteSeed } from '../util/rng.js';

/** How a forward pass runs: training (batch statistics, dropout) or eval; each dropout site's seed from `seed`. */
export interface RunMode {
  training: boolean;
  /** dropout probability used in training (the reference's 0.4; the golden train files use 0) */
  dropout: number;
  /** the seed of the named dropout site in this step (the same whichever thread runs the site) */
  seed: (site: string) => number;
}

export function evalMode(): RunMode {
  return { training: false, dropout: 0, seed: () => 0 };
}

/** Training with dropout `rate`; the masks of a step derive from `stepSeed` and the site's name. */
export function trainMode(stepSeed: number, rate = DROPOUT): RunMode {
  return { training: true, dropout: rate, seed: (site) => siteSeed(stepSeed, site) };
}

export function maybeDropout(x: tf.Tensor, mode: RunMode, site: string): tf.Tensor {
  return mode.training && mode.dropout > 0 ? dropout(x, mode.dropout, mode.seed(site)) : x;
}

/** images (nImg, 36, imgDim) -> region embeddings (nImg, 36, D), l2-normalised unless no_imgnorm. */
export function encodeImages(w: Weights, images: tf.Tensor3D, c: ModelConfig): tf.Tensor3D {
  const y = linear(images, w, 'img_enc.fc', true, false); // the features are data: no gradient for them
  return (c.noImgNorm ? y : l2norm(y)) as tf.Tensor3D;
}

/** A batch of token-id sequences, padded with 0 to the longest. */
export interface TokenBatch {
  ids: Int32Array; // (nCap, Lp) row-major, 0 = <pad>
  lengths: number[]; // each counts <start> and <end>
  maxLen: number; // Lp
}

/** Row permutation that reverses each caption within its own length (padding stays in place). */
function reversalPermutation(lengths: number[], Lp: number): Int32Array {
  const p = new Int32Array(lengths.length * Lp);
  lengths.forEach((L, b) => {
    for (let t = 0; t < Lp; t++) p[b * Lp + t] = b * Lp + (t < L ? L - 1 - t : t);
  });
  return p;
}

/** Valid-token mask (nCap, Lp) as float 1/0. */
export function tokenMask(lengths: number[], Lp: number): tf.Tensor2D {
  const m = new Float32Array(lengths.length * Lp);
  lengths.forEach((L, b) => m.fill(1, b * Lp, b * Lp + L));
  return tf.tensor2d(m, [lengths.length, Lp]);
}

/**
 * One GRU direction over x (nCap*Lp, wordDim) laid out caption-major; returns hidden states (nCap, Lp, H).
 * PyTorch's cell, gates stacked r, z, n; h0 = 0. Steps past a caption's length compute values that are
 * masked afterwards and never feed a valid step (the forward pass is causal; the backward one runs on
 * per-caption reversed input), which is what a packed sequence gives.
 */
function gruDirection(w: Weights, x: tf.Tensor2D, nCap: number, Lp: number, suffix: string): tf.Tensor3D {
  const H = w.t(`txt_enc.cap_rnn.weight_hh_l0${suffix}`).shape[1] as number;
  const wih = w.t(`txt_enc.cap_rnn.weight_ih_l0${suffix}`) as tf.Tensor2D;
  const whh = w.t(`txt_enc.cap_rnn.weight_hh_l0${suffix}`) as tf.Tensor2D;
  const wihT = w.derived(`wih${suffix}`, () => tf.transpose(wih)) as tf.Tensor2D;
  const whhT = w.derived(`whh${suffix}`, () => tf.transpose(whh)) as tf.Tensor2D;
  const bih = w.t(`txt_enc.cap_rnn.bias_ih_l0${suffix}`);
  const bhh = w.t(`txt_enc.cap_rnn.bias_hh_l0${suffix}`);
  // Input projections of every step at once: one large 2-D product.
  const xp = tf.add(mmW(x, wih, wihT), bih).reshape([nCap, Lp, 3 * H]);
  const steps = tf.unstack(tf.transpose(xp, [1, 0, 2])) as tf.Tensor2D[]; // Lp x (nCap, 3H)
  let h: tf.Tensor2D = tf.zeros([nCap, H]);
  const outs: tf.Tensor2D[] = [];
  for (let t = 0; t < Lp; t++) {
    const hp = tf.add(mmW(h, whh, whhT), bhh);
    const [xr, xz, xn] = tf.split(steps[t], 3, 1);
    const [hr, hz, hn] = tf.split(hp, 3, 1);
    const r = tf.sigmoid(tf.add(xr, hr));
    const z = tf.sigmoid(tf.add(xz, hz));
    const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
    h = tf.add(n, tf.mul(z, tf.sub(h, n))) as tf.Tensor2D; // (1-z)*n + z*h
    outs.push(h);
  }
  return tf.stack(outs, 1) as tf.Tensor3D;
}

/** Captions -> word embeddings (nCap, Lp, D); padded positions are exactly 0. */
export function encodeCaptions(w: Weights, batch: TokenBatch, c: ModelConfig, mode: RunMode): tf.Tensor3D {
  const nCap = batch.lengths.length;
  const Lp = batch.maxLen;
  const ids = tf.tensor1d(batch.ids, 'int32');
  let x = embeddingLookup(w.t('txt_enc.embed.weight') as tf.Tensor2D, ids); // (nCap*Lp, wordDim)
  x = maybeDropout(x, mode, 'txt_enc.embed') as tf.Tensor2D;
  let out = gruDirection(w, x, nCap, Lp, '');
  if (c.biGru) {
    const perm = tf.tensor1d(reversalPermutation(batch.lengths, Lp), 'int32');
    const xr = permuteRowsInvolution(x, perm);
    const back = gruDirection(w, xr, nCap, Lp, '_reverse');
    const H = back.shape[2] as number;
    const backAligned = permuteRowsInvolution(back.reshape([nCap * Lp, H]) as tf.Tensor2D, perm).reshape([nCap, Lp, H]);
    out = tf.mul(tf.add(out, backAligned), 0.5) as tf.Tensor3D;
  }
  out = tf.mul(out, tokenMask(batch.lengths, Lp).expandDims(2)) as tf.Tensor3D;
  return (c.noTxtNorm ? out : l2norm(out)) as tf.Tensor3D;
}
