// What a similarity module is to the rest of vsl: the record each module file (sgr.ts, saf.ts) exports and
// modules.ts registers. Everything outside src/model/ that depends on the module asks this record (its
// parameters, its forward, what it costs per pair, its per-caption BatchNorm) instead of comparing its name,
// so a new module is one file and one line in modules.ts, and a missing field is a type error.
import type * as tf from '@tensorflow/tfjs';
import type { NodeLayout } from '../ops/graphAttention.js';
import type { ModelConfig } from './config.js';
import type { ParamSpec } from './paramSpec.js';
import type { Weights } from './weights.js';

/** Optional hook that receives named intermediates (tests compare them with the reference's). */
export type DebugHook = (name: string, t: tf.Tensor) => void;

/** The nodes of every pair of a block: its global similarity vector (node 0), then its caption's words. */
export interface PairNodes {
  nodes: tf.Tensor4D; // (nImg, nCap, N, S), each node l2-normalised; N = Lp + 1, zero past a caption's words
  valid: tf.Tensor2D; // (nCap, N) 1 for each caption's valid nodes
  layout: NodeLayout; // the same as counts, for the graph attention kernels
}

/**
 * Per-caption BatchNorm statistics of a training forward (SAF: the reference runs its module, and so its
 * BatchNorm1d(1), once per caption), in caption order; the caller folds them into the running statistics.
 */
export interface CaptionBnStats {
  mean: tf.Tensor1D; // (nCap)
  varUnbiased: tf.Tensor1D; // (nCap)
}

export interface SimilarityModule {
  /** The name of --module and of the reference's opt.module_name. */
  readonly name: string;
  /** One clause for a run summary, e.g. ", 3 reasoning step(s)" (or ""). */
  describe(c: ModelConfig): string;
  /** Its parameters and buffers (sim_enc.<...>), in PyTorch's state_dict order. */
  params(c: ModelConfig): ParamSpec[];
  /** The options of its own that a checkpoint's keys tell, or undefined if the keys are not this module's. */
  detect(keys: readonly string[]): Partial<ModelConfig> | undefined;
  /** The model options only this module reads (a difference in them matters only to it). */
  readonly ownOptions: readonly (keyof ModelConfig)[];
  /**
   * One vector per pair, (nImg, nCap, S), from the pairs' nodes; in training also the per-caption BatchNorm
   * statistics when the module has such a BatchNorm.
   */
  forward(
    w: Weights,
    c: ModelConfig,
    pairs: PairNodes,
    training: boolean,
    dbg?: DebugHook,
  ): { vec: tf.Tensor3D; captionStats?: CaptionBnStats };
  /** The state_dict prefix of a BatchNorm run once per caption in training (its statistics: captionStats). */
  readonly captionBatchNorm?: string;
  /**
   * Heap of one image-caption pair of Lp tokens while its chunk is differentiated, in similarity vectors (S floats)
   * per token: how the runtime sizes training chunks (fitted to the heap's growth: docs/performance.md, Training
   * memory).
   */
  vectorsPerToken(c: ModelConfig): number;
  /**
   * Heap of one score worker at embed size 1024, in GiB, with 5 x 250 blocks (docs/performance.md, Evaluation
   * memory).
   */
  readonly scoreWorkerGiB: number;
  /** Forward multiply-add FLOPs per pair at 12 tokens, default dims (the bench's GFLOP/s). */
  readonly pairMflop: number;
}
