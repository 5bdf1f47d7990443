// How a training step's two expensive parts run: the caption side (bi-GRU + TextSA) and the (B, B) score block.
// train/step.ts's batchLoss encodes the images and hands the rest to the engine; which engine runs it is the
// engine's business: on this thread (chunks that fit the device, for the native backends and --workers 1), or
// split by captions with the training worker thread (twoThreadEngine.ts), with the same values.
import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import type { ParamRegistry } from '../model/params.js';
import type { RunMode, TokenBatch } from '../model/encoders.js';
import type { Weights } from '../model/weights.js';
import { captionSide } from '../model/sgraf.js';
import type { BatchScorer, ImageSide } from '../model/similarity.js';
import type { CaptionBnStats } from '../model/similarityModule.js';
import { blockParamNames, chunkedScorer } from './chunkedScores.js';

/** What a step hands the engine before its tape starts. */
export interface StepStart {
  reg: ParamRegistry;
  config: ModelConfig;
  tokens: TokenBatch;
  nImg: number;
  stepSeed: number;
  dropout: number;
}

export interface StepEngine {
  /** Before the step's tape: hand work to another thread (it may start at once). */
  begin(s: StepStart): void;
  /**
   * The (nImg, B) training scores of the batch, given its image side (called as soon as the images are encoded,
   * so that another thread gets them early): the engine encodes the captions as model/sgraf.ts's captionSide does
   * and scores them against every image as model/similarity.ts's blockScores does; with the module's per-caption
   * BatchNorm statistics, in caption order.
   */
  scores(
    w: Weights,
    c: ModelConfig,
    img: ImageSide,
    tokens: TokenBatch,
    mode: RunMode,
  ): { sims: tf.Tensor2D; captionStats: CaptionBnStats[] };
  /**
   * After the tape: gradients computed off the tape (another thread's part of them), by parameter name; they are
   * added to the tape's. Caller disposes.
   */
  finish(): Map<string, tf.Tensor>;
  /** The step failed before finish(): release whatever waits on it. */
  abort(): void;
}

/** Everything on this thread: the model's caption side and the chunked scorer. */
export function oneThreadEngine(chunkBytes: number): StepEngine {
  let score: BatchScorer | null = null;
  return {
    begin(s) {
      score = chunkedScorer(blockParamNames(s.reg.trainable().map((e) => e.spec.name)), chunkBytes);
    },
    scores: (w, c, img, tokens, mode) => score!(w, c, img, captionSide(w, c, tokens, mode)),
    finish: () => new Map(),
    abort() {},
  };
}
