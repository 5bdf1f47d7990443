// One training step: the batch's loss (encode both sides, score every pair, hinge + semantic), its
// gradients, global-norm clip, Adam; then the BatchNorm running statistics (VisualSA's once, SAF's once per
// caption). The caption side and the score block run on the step engine (chunks that fit the device, a second
// thread that takes a share of the captions).
import * as tf from '@tensorflow/tfjs';
import { BN_MOMENTUM, type ModelConfig } from '../model/config.js';
import type { ParamRegistry } from '../model/params.js';
import { Weights } from '../model/weights.js';
import { imageSide } from '../model/sgraf.js';
import { trainMode, type RunMode, type TokenBatch } from '../model/encoders.js';
import type { BnBatchStats } from '../model/batchnorm.js';
import type { CaptionBnStats } from '../model/similarityModule.js';
import { moduleOf } from '../model/modules.js';
import type { StepEngine } from '../runtime/stepEngine.js';
import { hingeLoss } from '../loss/hinge.js';
import { semanticLoss, type SemanticLossKind } from '../loss/semantic.js';
import { Adam, clipFactor } from './adam.js';
import { valueAndGradients } from '../ops/tape.js';
import { stage } from '../ops/profile.js';

export interface TrainBatch {
  images: Float32Array; // (B, 36, imgDim)
  tokens: TokenBatch; // sorted by length, longest first; caption b belongs with image b
  imageSim: Float32Array | null; // (B, B) TF-IDF image-image similarity (VSL)
  captionSim: Float32Array | null; // (B, B) caption-caption similarity (textual ablation)
}

export interface StepOptions extends LossOptions {
  gradClip: number;
  dropout: number; // 0.4 in the reference; 0 for deterministic checks
  /** runs the caption side and the score block: on this thread, or with the training worker (runtime/) */
  engine: StepEngine;
  /** the step's seed: every dropout mask of the step derives from it and its site's name */
  seed: number;
}

export interface StepResult {
  hinge: number;
  semantic: number;
  total: number;
  gradNorm: number;
}

/** Fold a sequence of batch statistics into PyTorch's running statistics (momentum 0.1, in order). */
function updateRunning(reg: ParamRegistry, prefix: string, means: tf.Tensor[], vars: tf.Tensor[]): void {
  const rm = reg.get(`${prefix}.running_mean`);
  const rv = reg.get(`${prefix}.running_var`);
  const cnt = reg.get(`${prefix}.num_batches_tracked`);
  tf.tidy(() => {
    let m: tf.Tensor = rm;
    let v: tf.Tensor = rv;
    for (let i = 0; i < means.length; i++) {
      m = tf.add(tf.mul(m, 1 - BN_MOMENTUM), tf.mul(means[i], BN_MOMENTUM));
      v = tf.add(tf.mul(v, 1 - BN_MOMENTUM), tf.mul(vars[i], BN_MOMENTUM));
    }
    rm.assign(m);
    rv.assign(v);
    cnt.assign(tf.add(cnt, means.length));
  });
}

/** The batch as tensors, for the loss. */
interface BatchTensors {
  images: tf.Tensor3D; // (B, 36, imgDim)
  tokens: TokenBatch;
  imageSim: tf.Tensor2D | null;
  captionSim: tf.Tensor2D | null;
}

interface LossOptions {
  margin: number;
  maxViolation: boolean;
  semantic: SemanticLossKind;
}

/** The loss of one batch and what else its forward pass gives. */
interface BatchLoss {
  total: tf.Scalar;
  hinge: tf.Scalar;
  semantic: tf.Scalar;
  sims: tf.Tensor2D; // (B, B): image i with caption j
  bnStats: BnBatchStats[];
  captionStats: CaptionBnStats[];
}

/**
 * The loss of one batch: encode both sides, score every image with every caption, hinge + semantic.
 * The engine encodes the captions and computes the (B, B) scores as the model does (model/sgraf.ts captionSide,
 * model/similarity.ts blockScores): in chunks that fit the device, and with a second thread (runtime/), which
 * gets the image side as soon as it is encoded.
 */
function batchLoss(
  w: Weights,
  c: ModelConfig,
  b: BatchTensors,
  mode: RunMode,
  o: LossOptions,
  engine: Pick<StepEngine, 'scores'>,
): BatchLoss {
  const img = imageSide(w, c, b.images, mode);
  const { sims, captionStats } = engine.scores(w, c, img.side, b.tokens, mode);
  const { hinge, semantic } = stage('losses', () => ({
    hinge: hingeLoss(sims, o.margin, o.maxViolation),
    semantic: semanticLoss(o.semantic, sims, b.imageSim, b.captionSim),
  }));
  return { total: tf.add(hinge, semantic), hinge, semantic, sims, bnStats: img.bnStats, captionStats };
}

/** Forward + backward of the loss; returns the gradients by parameter name (caller disposes). */
export function lossAndGrads(
  reg: ParamRegistry,
  c: ModelConfig,
  batch: TrainBatch,
  o: StepOptions,
): {
  hinge: number;
  semantic: number;
  total: number;
  grads: Map<string, tf.Tensor>;
  bnStats: BnBatchStats[];
  captionStats: CaptionBnStats[];
  sims: Float32Array;
} {
  const B = batch.tokens.lengths.length;
  const trainable = reg.trainable().map((e) => e.spec.name);
  const mode = trainMode(o.seed, o.dropout);
  const t: BatchTensors = stage('batch to device', () => ({
    images: tf.tensor3d(batch.images, [B, batch.images.length / B / c.imgDim, c.imgDim]),
    tokens: batch.tokens,
    imageSim: batch.imageSim ? tf.tensor2d(batch.imageSim, [B, B]) : null,
    captionSim: batch.captionSim ? tf.tensor2d(batch.captionSim, [B, B]) : null,
  }));
  let kept: BatchLoss | undefined;
  o.engine.begin({ reg, config: c, tokens: batch.tokens, nImg: B, stepSeed: o.seed, dropout: o.dropout });
  let taped: { value: tf.Tensor; grads: tf.Tensor[] };
  let w: Weights | undefined;
  try {
    taped = valueAndGradients(
      (...ps: tf.Tensor[]) => {
        const byName = new Map(trainable.map((n, i) => [n, ps[i]]));
        w = new Weights((n) => byName.get(n) ?? reg.get(n));
        const r = batchLoss(w, c, t, mode, o, o.engine);
        kept = {
          ...r,
          bnStats: r.bnStats.map((s) => ({ ...s, mean: tf.keep(s.mean), varUnbiased: tf.keep(s.varUnbiased) })),
        };
        tf.keep(r.hinge);
        tf.keep(r.semantic);
        tf.keep(r.sims);
        return r.total;
      },
      trainable.map((n) => reg.get(n)),
    );
  } catch (e) {
    o.engine.abort();
    throw e;
  } finally {
    w?.dispose();
  }
  const { value, grads } = taped;
  // gradients computed off this thread's tape (the training worker's share of the caption encoder's): added
  const offTape = o.engine.finish();
  for (const [n, g] of offTape) {
    const i = trainable.indexOf(n);
    const sum = tf.add(grads[i], g);
    tf.dispose([grads[i], g]);
    grads[i] = sum;
  }
  const r = kept!;
  const out = {
    hinge: r.hinge.dataSync()[0],
    semantic: r.semantic.dataSync()[0],
    total: value.dataSync()[0],
    sims: Float32Array.from(r.sims.dataSync() as Float32Array),
    grads: new Map(trainable.map((n, i) => [n, grads[i]])),
    bnStats: r.bnStats,
    captionStats: r.captionStats,
  };
  tf.dispose([r.hinge, r.semantic, r.sims, value, t.images]);
  if (t.imageSim) t.imageSim.dispose();
  if (t.captionSim) t.captionSim.dispose();
  return out;
}

/** Apply the running-statistics updates gathered by a forward pass, then dispose them. */
function applyBatchNormStats(reg: ParamRegistry, bnStats: BnBatchStats[], captionStats: CaptionBnStats[]): void {
  for (const s of bnStats) updateRunning(reg, s.prefix, [s.mean], [s.varUnbiased]);
  const perCaption = moduleOf(reg.config).captionBatchNorm;
  if (captionStats.length && perCaption) {
    // SAF's BatchNorm1d(1) is called once per caption in the reference: one momentum update each.
    const means = tf.concat(captionStats.map((s) => s.mean));
    const vars = tf.concat(captionStats.map((s) => s.varUnbiased));
    const n = means.shape[0];
    const ms = tf.split(means, n);
    const vs = tf.split(vars, n);
    updateRunning(reg, perCaption, ms, vs);
    tf.dispose([means, vars, ...ms, ...vs]);
  }
  for (const s of bnStats) tf.dispose([s.mean, s.varUnbiased]);
  for (const s of captionStats) tf.dispose([s.mean, s.varUnbiased]);
}

/** A full step: loss, gradients, clipping, Adam, BatchNorm statistics. Throws on a non-finite loss before updating. */
export function trainStep(
  reg: ParamRegistry,
  c: ModelConfig,
  adam: Adam,
  batch: TrainBatch,
  o: StepOptions,
): StepResult & { sims: Float32Array } {
  const r = lossAndGrads(reg, c, batch, o);
  let gradNorm = 0;
  if (!Number.isFinite(r.total)) {
    tf.dispose([...r.grads.values()]);
    for (const s of r.bnStats) tf.dispose([s.mean, s.varUnbiased]);
    for (const s of r.captionStats) tf.dispose([s.mean, s.varUnbiased]);
    throw new NonFiniteLossError(r.hinge, r.semantic);
  }
  stage('clip + Adam', () => {
    const { norm, coef } = clipFactor(r.grads, o.gradClip);
    adam.apply(reg, r.grads, coef);
    tf.dispose([...r.grads.values()]);
    gradNorm = norm;
  });
  stage('BatchNorm statistics', () => applyBatchNormStats(reg, r.bnStats, r.captionStats));
  return { hinge: r.hinge, semantic: r.semantic, total: r.total, gradNorm, sims: r.sims };
}

export class NonFiniteLossError extends Error {
  constructor(
    readonly hinge: number,
    readonly semantic: number,
  ) {
    super(`the loss is not finite (hinge ${hinge}, semantic ${semantic}); no update was applied`);
  }
}
