// The similarity encoder (SPEC §4.3) for a block of images x captions, shaped for plain 2-D products:
// each image meets the whole caption block at once, so attention, context and the local similarity
// Linear are large (nCap*Lp, ·) products instead of the reference's per-caption Python loop.
import * as tf from '@tensorflow/tfjs';
import { BN_EPS, type ModelConfig } from './config.js';
import { additiveMask, l1norm, l2norm, linear } from './ops.js';
import { mm } from '../engine/matmul.js';
import { localSimilarity, localSimilarityEval } from './localSimilarity.js';
import { graphStep, graphStepTrain, type StepWeights } from './graphReasoning.js';
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

/** Optional hook that receives named intermediates (tests compare them with the reference's). */
export type DebugHook = (name: string, t: tf.Tensor) => void;

export interface SafCaptionStats {
  mean: tf.Tensor1D; // (nCap) batch mean of the SAF gate per caption
  varUnbiased: tf.Tensor1D; // (nCap)
}

/** Node validity (nCap, N): the global node 0 and each caption's L word nodes. */
function nodeMask(lengths: number[], N: number): tf.Tensor2D {
  const m = new Float32Array(lengths.length * N);
  lengths.forEach((L, c) => m.fill(1, c * N, c * N + L + 1));
  return tf.tensor2d(m, [lengths.length, N]);
}

/**
 * Local similarity vectors before their l2norm, (nImg, nCap, Lp, S). In training through the hand-written
 * gradient of localSimilarity.ts (it keeps far less per pair than tfjs' own).
 */
function localVectors(w: Weights, img: ImageSide, cap: CaptionSide, training: boolean): tf.Tensor4D {
  const [nImg, , D] = img.regions.shape;
  const [nCap, Lp] = cap.words.shape;
  const words2d = cap.words.reshape([nCap * Lp, D]) as tf.Tensor2D;
  const pre = 'sim_enc.sim_tranloc_w';
  const locWT = w.wT(pre);
  const S = locWT.shape[1];
  const out = training
    ? localSimilarity(words2d, img.regions, w.t(`${pre}.weight`) as tf.Tensor2D, locWT, w.b(pre), { nCap, Lp })
    : localSimilarityEval(words2d, img.regions, locWT, w.b(pre), { nCap, Lp });
  return out.reshape([nImg, nCap, Lp, S]) as tf.Tensor4D;
}

/** Global similarity vectors before their l2norm, (nImg, nCap, S). */
function globalSimilarity(w: Weights, img: ImageSide, cap: CaptionSide): tf.Tensor3D {
  // sub + square: tfjs' squaredDifference gradient does not reduce over broadcast axes
  const d = tf.square(tf.sub(tf.expandDims(img.vGlobal, 1), tf.expandDims(cap.tGlobal, 0)));
  return linear(d, w, 'sim_enc.sim_tranglo_w') as tf.Tensor3D;
}

/**
 * SGR: sgr_step graph reasoning steps over the nodes (nImg, nCap, N, S); returns the global node (nImg, nCap, S).
 * Q·Kᵀ = N·(Wqᵀ Wk)·Nᵀ + 1·(bqᵀ Wk)·Nᵀ + (terms constant along each softmax row, which cancel), so the
 * query and key maps fold into one S×S matrix and one vector: a third less work, same softmax.
 */
function graphReasoning(
  w: Weights,
  c: ModelConfig,
  nodes: tf.Tensor4D,
  keyMask: tf.Tensor,
  training: boolean,
  dbg?: DebugHook,
): tf.Tensor3D {
  const [nImg, nCap, N, S] = nodes.shape;
  const P = nImg * nCap;
  let x = nodes.reshape([P, N, S]) as tf.Tensor3D;
  const mask = tf.expandDims(keyMask, 0); // (1, nCap, 1, N), broadcast over images and query nodes
  for (let s = 0; s < c.sgrStep; s++) {
    const pre = `sim_enc.SGR_module.${s}`;
    const key = w.t(`${pre}.graph_key_w.weight`) as tf.Tensor2D;
    const sw: StepWeights = {
      qk: w.derived(`${pre}.qk`, () => mm(w.wT(`${pre}.graph_query_w`), key)) as tf.Tensor2D,
      qb: w.derived(`${pre}.qb`, () =>
        mm(w.b(`${pre}.graph_query_w`).reshape([1, S]) as tf.Tensor2D, key).reshape([S]),
      ) as tf.Tensor1D,
      w: w.t(`${pre}.sim_graph_w.weight`) as tf.Tensor2D,
      wT: w.wT(`${pre}.sim_graph_w`),
      b: w.b(`${pre}.sim_graph_w`),
    };
    x = training ? graphStepTrain(x, sw, mask, { nImg, nCap }) : graphStep(x, sw, mask, { nImg, nCap });
    if (dbg) dbg(`SGR_module.${s}`, x.reshape([nImg, nCap, N, S]));
  }
  return x.slice([0, 0, 0], [P, 1, S]).reshape([nImg, nCap, S]) as tf.Tensor3D;
}

/**
 * SAF: gate each node with sigmoid(BatchNorm1d(1)(Linear(node))), l1-normalise over the caption's nodes,
 * pool and l2-normalise. In training the BatchNorm takes statistics per caption over all its images × nodes.
 */
function attentionFiltration(
  w: Weights,
  nodes: tf.Tensor4D,
  valid: tf.Tensor2D,
  training: boolean,
): { vec: tf.Tensor3D; stats?: SafCaptionStats } {
  const pre = 'sim_enc.SAF_module';
  const g = linear(nodes, w, `${pre}.attn_sim_w`).squeeze([3]); // (nImg, nCap, N)
  const nImg = nodes.shape[0];
  const gamma = w.t(`${pre}.bn.weight`);
  const beta = w.t(`${pre}.bn.bias`);
  let normed: tf.Tensor;
  let stats: SafCaptionStats | undefined;
  const v = tf.expandDims(valid, 0); // (1, nCap, N)
  if (training) {
    const count = tf.mul(tf.sum(valid, 1), nImg); // (nCap): images × valid nodes
    const mean = tf.div(tf.sum(tf.mul(g, v), [0, 2]), count);
    const centred = tf.sub(g, mean.reshape([1, -1, 1]));
    const variance = tf.div(tf.sum(tf.mul(tf.square(centred), v), [0, 2]), count);
    normed = tf.div(centred, tf.sqrt(tf.add(variance.reshape([1, -1, 1]), BN_EPS)));
    stats = {
      mean: mean as tf.Tensor1D,
      varUnbiased: tf.div(tf.mul(variance, count), tf.sub(count, 1)) as tf.Tensor1D,
    };
  } else {
    normed = tf.div(tf.sub(g, w.t(`${pre}.bn.running_mean`)), tf.sqrt(tf.add(w.t(`${pre}.bn.running_var`), BN_EPS)));
  }
  const gate = tf.mul(tf.sigmoid(tf.add(tf.mul(normed, gamma), beta)), v);
  const attn = l1norm(gate, 2);
  const pooled = tf.sum(tf.mul(tf.expandDims(attn, 3), nodes), 2);
  return { vec: l2norm(pooled) as tf.Tensor3D, stats };
}

/**
 * Scores (nImg, nCap) in (0, 1) of every image of the block with every caption of the block.
 * In training (SAF) also the per-caption BatchNorm statistics, in caption order.
 */
export function blockScores(
  w: Weights,
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
  training: boolean,
  dbg?: DebugHook,
): { sims: tf.Tensor2D; safStats?: SafCaptionStats } {
  const [nImg] = img.regions.shape;
  const [nCap, Lp] = cap.words.shape;
  const N = Lp + 1;
  const local = localVectors(w, img, cap, training);
  const glob = globalSimilarity(w, img, cap);
  if (dbg) {
    dbg('sim_tranloc_w', local);
    dbg('sim_tranglo_w', glob);
  }
  const nodes = tf.concat([tf.expandDims(l2norm(glob), 2), l2norm(local)], 2) as tf.Tensor4D; // global node first
  const valid = nodeMask(cap.lengths, N);
  let vec: tf.Tensor3D;
  let safStats: SafCaptionStats | undefined;
  if (c.module === 'SGR') {
    vec = graphReasoning(w, c, nodes, additiveMask(valid).reshape([nCap, 1, N]), training, dbg);
  } else {
    const r = attentionFiltration(w, nodes, valid, training);
    vec = r.vec;
    safStats = r.stats;
    if (dbg) dbg('SAF_module', vec);
  }
  const logit = linear(vec, w, 'sim_enc.sim_eval_w').reshape([nImg, nCap]);
  if (dbg) dbg('sim_eval_w', logit);
  return { sims: tf.sigmoid(logit) as tf.Tensor2D, safStats };
}

/**
 * A way to compute the (nImg, nCap) training scores of a batch with SAF's per-caption statistics: blockScores in
 * one graph (singleGraphScorer), or the engine's chunked, two-thread scorer (engine/chunkedScores.ts).
 */
export type BatchScorer = (
  w: Weights,
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
) => { sims: tf.Tensor2D; safStats: SafCaptionStats[] };

export const singleGraphScorer: BatchScorer = (w, c, img, cap) => {
  const r = blockScores(w, c, img, cap, true);
  return { sims: r.sims, safStats: r.safStats ? [r.safStats] : [] };
};
