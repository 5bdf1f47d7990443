// The similarity encoder for a block of images x captions, shaped for plain 2-D products:
// each image meets the whole caption block at once, so attention, context and the local similarity
// Linear are large (nCap*Lp, ·) products instead of the reference's per-caption Python loop.
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config.js';
import { l2norm, linear } from './ops.js';
import { block } from '../ops/profile.js';
import { localSimilarity, localSimilarityEval } from './localSimilarity.js';
import { moduleOf } from './modules.js';
import type { CaptionBnStats, DebugHook, PairNodes } from './similarityModule.js';
import type { Weights } from './weights.js';

/** Image side of a block: region embeddings and their global vectors. */
export interface ImageSide {
  regions: tf.Tensor3D; // (nImg, 36, D), l2-normed
  vGlobal: tf.Tensor2D; // (nImg, D)
}

/** Caption side of a block: zero-padded word embeddings, global vectors and lengths. */
export interface CaptionSide {
  words: tf.Tensor3D; // (nCap, Lp, D)
  tGlobal: tf.Tensor2D; // (nCap, D)
  lengths: number[];
}

/** The valid nodes of each caption: its global node and its L words, as a (nCap, N) 0/1 mask and an int32 count. */
function nodesOf(lengths: number[], N: number): Omit<PairNodes, 'nodes'> {
  const m = new Float32Array(lengths.length * N);
  lengths.forEach((L, c) => m.fill(1, c * N, c * N + L + 1));
  return {
    valid: tf.tensor2d(m, [lengths.length, N]),
    layout: {
      nCap: lengths.length,
      count: tf.tensor1d(
        lengths.map((L) => L + 1),
        'int32',
      ),
    },
  };
}

/**
 * Local similarity vectors before their l2norm, (nImg, nCap, Lp, S). In training through the hand-written
 * gradient of localSimilarity.ts (it keeps far less per pair than tfjs' own).
 */
function localVectors(w: Weights, img: ImageSide, cap: CaptionSide, training: boolean): tf.Tensor4D {
  const [nImg, , D] = img.regions.shape;
  const [nCap, Lp] = cap.words.shape;
  const words2d = cap.words.reshape<tf.Tensor2D>([nCap * Lp, D]);
  const pre = 'sim_enc.sim_tranloc_w';
  const locWT = w.wT(pre);
  const S = locWT.shape[1];
  const out = training
    ? localSimilarity(words2d, img.regions, w.t(`${pre}.weight`) as tf.Tensor2D, locWT, w.b(pre), { nCap, Lp })
    : localSimilarityEval(words2d, img.regions, locWT, w.b(pre), { nCap, Lp });
  return out.reshape([nImg, nCap, Lp, S]);
}

/** Global similarity vectors before their l2norm, (nImg, nCap, S). */
function globalSimilarity(w: Weights, img: ImageSide, cap: CaptionSide): tf.Tensor3D {
  // sub + square: tfjs' squaredDifference gradient does not reduce over broadcast axes
  const d = tf.square(tf.sub(tf.expandDims(img.vGlobal, 1), tf.expandDims(cap.tGlobal, 0)));
  return linear(d, w, 'sim_enc.sim_tranglo_w') as tf.Tensor3D;
}

/**
 * Scores (nImg, nCap) in (0, 1) of every image of the block with every caption of the block.
 * In training also the module's per-caption BatchNorm statistics (SAF's), in caption order.
 */
export function blockScores(
  w: Weights,
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
  training: boolean,
  dbg?: DebugHook,
): { sims: tf.Tensor2D; captionStats?: CaptionBnStats } {
  const [nImg] = img.regions.shape;
  const [nCap, Lp] = cap.words.shape;
  const N = Lp + 1;
  const local = block('local attention + similarity', () => localVectors(w, img, cap, training));
  const glob = block('global similarity', () => globalSimilarity(w, img, cap));
  if (dbg) {
    dbg('sim_tranloc_w', local);
    dbg('sim_tranglo_w', glob);
  }
  // the nodes of each pair, l2-normalised: its global similarity vector first, then its words'
  const nodes = block('similarity nodes', () => l2norm(tf.concat([tf.expandDims(glob, 2), local], 2)) as tf.Tensor4D);
  tf.dispose([local, glob]); // the tape keeps what it needs of them
  const m = moduleOf(c);
  const { vec, captionStats } = block(m.name, () =>
    m.forward(w, c, { nodes, ...nodesOf(cap.lengths, N) }, training, dbg),
  );
  const logit = block('score head', () => linear(vec, w, 'sim_enc.sim_eval_w').reshape([nImg, nCap]));
  if (dbg) dbg('sim_eval_w', logit);
  return { sims: tf.sigmoid(logit) as tf.Tensor2D, captionStats };
}

/**
 * A way to compute the (nImg, nCap) training scores of a batch with the module's per-caption BatchNorm statistics:
 * blockScores in one graph, or the runtime's chunked, two-thread scorer (runtime/).
 */
export type BatchScorer = (
  w: Weights,
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
) => { sims: tf.Tensor2D; captionStats: CaptionBnStats[] };
