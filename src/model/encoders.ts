// The two encoders: image regions -> (nImg, 36, D); captions -> (nCap, Lp, D) with a
// bidirectional GRU over packed sequences (gru.ts), the two directions averaged.
import * as tf from '@tensorflow/tfjs';
import { DROPOUT, type ModelConfig } from './config.js';
import { dropout, l2norm, linear, type MaskWindow } from './ops.js';
import { gatherRows, scatterRows } from '../ops/gather.js';
import { gruDirection, packing } from './gru.js';
import type { Weights } from './weights.js';
import { siteSeed } from '../util/rng.js';

/** How a forward pass runs: training (batch statistics, dropout) or eval; each dropout site's seed from `seed`. */
export interface RunMode {
  training: boolean;
  /** dropout probability used in training (the reference's 0.4; the golden train files use 0) */
  dropout: number;
  /** the seed of the named dropout site in this step (the same whichever thread runs the site) */
  seed: (site: string) => number;
  /**
   * Set when the captions encoded are a share of a batch (one thread's, runtime/twoThreadEngine.ts): captions
   * [first, first + n) of `batch` captions padded to `maxLen`. The caption sites' masks are then those captions'
   * rows of the whole batch's masks, so a share drops what the whole batch would.
   */
  captionShare?: { first: number; batch: number; maxLen: number };
}

export function evalMode(): RunMode {
  return { training: false, dropout: 0, seed: () => 0 };
}

/** Training with dropout `rate`; the masks of a step derive from `stepSeed` and the site's name. */
export function trainMode(stepSeed: number, rate = DROPOUT): RunMode {
  return { training: true, dropout: rate, seed: (site) => siteSeed(stepSeed, site) };
}

export function maybeDropout(x: tf.Tensor, mode: RunMode, site: string, window?: MaskWindow): tf.Tensor {
  return mode.training && mode.dropout > 0 ? dropout(x, mode.dropout, mode.seed(site), window) : x;
}

/**
 * maybeDropout at a caption site: x is (nCap, Lp, d) per token or (nCap, d) per caption; in a share of a batch
 * (mode.captionShare) its mask is the share's block of the whole batch's.
 */
export function maybeCaptionDropout(x: tf.Tensor, mode: RunMode, site: string): tf.Tensor {
  const s = mode.captionShare;
  if (!s) return maybeDropout(x, mode, site);
  const whole = [s.batch, ...(x.rank === 3 ? [s.maxLen] : []), x.shape[x.rank - 1]];
  return maybeDropout(x, mode, site, { begin: whole.map((_, i) => (i === 0 ? s.first : 0)), whole });
}

/** images (nImg, 36, imgDim) -> region embeddings (nImg, 36, D), l2-normalised unless no_imgnorm. */
export function encodeImages(w: Weights, images: tf.Tensor3D, c: ModelConfig): tf.Tensor3D {
  const y = linear(images, w, 'img_enc.fc', { inputGrad: false }); // the features are data: no gradient for them
  return (c.noImgNorm ? y : l2norm(y)) as tf.Tensor3D;
}

/** A batch of token-id sequences, padded with 0 to the longest. */
export interface TokenBatch {
  ids: Int32Array; // (nCap, Lp) row-major, 0 = <pad>
  lengths: number[]; // each counts <start> and <end>
  maxLen: number; // Lp
}

/**
 * Captions [a, b) of a batch (sorted longest first) as a batch of their own, padded to their longest (lengths[a]),
 * and the mode that encodes them as the whole batch would (its dropout masks: RunMode.captionShare).
 */
export function captionShare(
  batch: TokenBatch,
  mode: RunMode,
  a: number,
  b: number,
): { tokens: TokenBatch; mode: RunMode } {
  const [Lp, Lr] = [batch.maxLen, batch.lengths[a]];
  const ids = new Int32Array((b - a) * Lr);
  for (let i = a; i < b; i++) ids.set(batch.ids.subarray(i * Lp, i * Lp + Lr), (i - a) * Lr);
  const whole = mode.captionShare ?? { first: 0, batch: batch.lengths.length, maxLen: Lp };
  return {
    tokens: { ids, lengths: batch.lengths.slice(a, b), maxLen: Lr },
    mode: { ...mode, captionShare: { ...whole, first: whole.first + a } },
  };
}

/** Valid-token mask (nCap, Lp) as float 1/0. */
export function tokenMask(lengths: number[], Lp: number): tf.Tensor2D {
  const m = new Float32Array(lengths.length * Lp);
  lengths.forEach((L, b) => m.fill(1, b * Lp, b * Lp + L));
  return tf.tensor2d(m, [lengths.length, Lp]);
}

/**
 * Captions -> word embeddings (nCap, Lp, D); padded positions are exactly 0. The embedded tokens (with their
 * dropout) are packed for each direction (gru.ts), and the hidden states scattered back to their tokens: the
 * reverse direction's to the token it read, which aligns it with the forward one; the two are averaged.
 */
export function encodeCaptions(w: Weights, batch: TokenBatch, c: ModelConfig, mode: RunMode): tf.Tensor3D {
  const nCap = batch.lengths.length;
  const Lp = batch.maxLen;
  const ids = tf.tensor1d(batch.ids, 'int32');
  let x = gatherRows(w.t('txt_enc.embed.weight') as tf.Tensor2D, ids); // (nCap*Lp, wordDim)
  x = maybeCaptionDropout(x.reshape([nCap, Lp, -1]), mode, 'txt_enc.embed').reshape<tf.Tensor2D>([nCap * Lp, -1]);
  const pack = packing(batch.lengths, Lp);
  const direction = (rows: Int32Array, suffix: string) => {
    const idx = tf.tensor1d(rows, 'int32');
    return scatterRows(gruDirection(w, gatherRows(x, idx), pack.steps, suffix), idx, nCap * Lp);
  };
  let out: tf.Tensor = direction(pack.rowsF, '');
  if (c.biGru) out = tf.mul(tf.add(out, direction(pack.rowsR, '_reverse')), 0.5);
  out = out.reshape([nCap, Lp, -1]);
  return (c.noTxtNorm ? out : l2norm(out)) as tf.Tensor3D;
}
