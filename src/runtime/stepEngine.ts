// How a training step's two expensive parts run: the caption side (bi-GRU + TextSA) and the (B, B) score block.
// train/step.ts's batchLoss computes the loss with these; which engine runs them is the engine's business: on
// this thread (chunks that fit the device, for the native backends and --workers 1), or split with the training
// worker thread (twoThreadEngine.ts), with the same values.
import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import type { ParamRegistry } from '../model/params.js';
import type { RunMode, TokenBatch } from '../model/encoders.js';
import type { Weights } from '../model/weights.js';
import { captionSide } from '../model/sgraf.js';
import type { BatchScorer, CaptionSide } from '../model/similarity.js';
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
  /** The caption side of the batch, as model/sgraf.ts's captionSide computes it. */
  captionSide(w: Weights, c: ModelConfig, tokens: TokenBatch, mode: RunMode): CaptionSide;
  /** The (B, B) training scores of the batch. */
  score: BatchScorer;
  /**
   * After the tape: the gradients computed off the tape (another thread's), by parameter name; they replace the
   * tape's zeros for those parameters. Caller disposes.
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
    captionSide,
    score: (w, c, img, cap) => score!(w, c, img, cap),
    finish: () => new Map(),
    abort() {},
  };
}
