// One SGR or SAF model end to end: encoders, global vectors, block scores.
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.js';
import { encodeCaptions, encodeImages, type RunMode, type TokenBatch } from './encoders.js';
import { textGlobal, visualGlobal } from './globalAttention.js';
import { blockScores, type CaptionSide, type ImageSide } from './similarity.js';
import type { CaptionBnStats, DebugHook } from './similarityModule.js';
import type { BnBatchStats } from './batchnorm.js';
import type { Weights } from './weights.js';
import { block } from '../ops/profile.js';

/** Image side for a set of images: region embeddings and (once per image) VisualSA's global vector. */
export function imageSide(
  w: Weights,
  c: ModelConfig,
  images: tf.Tensor3D,
  mode: RunMode,
): { side: ImageSide; bnStats: BnBatchStats[] } {
  const regions = block('image encoder', () => encodeImages(w, images, c));
  const { vGlobal, bnStats } = block('VisualSA', () => visualGlobal(w, regions, mode));
  return { side: { regions, vGlobal }, bnStats };
}

/** Caption side for a set of captions: word embeddings and (once per caption) TextSA's global vector. */
export function captionSide(w: Weights, c: ModelConfig, tokens: TokenBatch, mode: RunMode): CaptionSide {
  const words = block('caption encoder (bi-GRU)', () => encodeCaptions(w, tokens, c, mode));
  return { words, tGlobal: block('TextSA', () => textGlobal(w, words, tokens.lengths, mode)), lengths: tokens.lengths };
}

export interface ForwardResult {
  sims: tf.Tensor2D; // (nImg, nCap)
  bnStats: BnBatchStats[]; // VisualSA's BatchNorms (training only)
  captionStats?: CaptionBnStats; // SAF's per-caption BatchNorm statistics (training only)
}

/** Scores of every image with every caption, in one graph (small inputs: tests and short batches). */
export function forwardSims(
  w: Weights,
  c: ModelConfig,
  images: tf.Tensor3D,
  tokens: TokenBatch,
  mode: RunMode,
  dbg?: DebugHook,
): ForwardResult {
  const { side: img, bnStats } = imageSide(w, c, images, mode);
  const cap = captionSide(w, c, tokens, mode);
  if (dbg) {
    dbg('v_global', img.vGlobal);
    dbg('t_global_w', cap.tGlobal);
    dbg('img_emb', img.regions);
    dbg('cap_emb', cap.words);
  }
  const { sims, captionStats } = blockScores(w, c, img, cap, mode.training, dbg);
  return { sims, bnStats, captionStats };
}
