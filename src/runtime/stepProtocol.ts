// What the main thread and the training worker thread exchange within one training step (stepPartner.ts is
// the main side, stepWorker.ts the worker's). The batch's captions are split at h: each thread encodes its own
// share (main [0, h), worker [h, B)) and scores it against every image, forward and backward; the main thread
// alone encodes the images. The step is synchronous on both sides (inside tfjs' gradient machinery on the main
// thread), so after the step's request message the two meet only through shared memory: each side moves its own
// phase word forward and Atomics.wait-s on the other's.
//
//   worker: encode its captions ─ wait REGIONS ─ score its share ─ SCORES ─▶ wait DS ─ its scores' backward
//           ─ SHARE_GRADS ─▶ its caption encoder's backward ─ CAPTION_GRADS ─▶
//   main:   encode the images ─ REGIONS ─▶ encode its captions ─ score its share ─ wait SCORES ─ loss ─ DS ─▶
//           its scores' and caption encoder's backward ─ wait SHARE_GRADS ─ the image encoder's backward
//           ─ wait CAPTION_GRADS ─ (caption encoder gradients: main's + worker's) ─ Adam
import type { ModelConfig } from '../model/config.js';

/** The worker's phase word (index 0 of the control array): what it has published in this step. */
export const enum WorkerPhase {
  Idle = 0,
  Scores = 1, // its share's scores (and the module's per-caption BatchNorm statistics)
  ShareGrads = 2, // the gradients of its share's scores for the image side and the block parameters
  CaptionGrads = 3, // its share's caption encoder parameter gradients: the step is done
  Ready = 4, // started, between steps
  Error = 9,
}

/** The main thread's phase word (index 1). */
export const enum MainPhase {
  None = 0,
  Regions = 1, // the image side
  DS = 2, // dLoss/dScores of the worker's share
  Abort = 9, // the step failed on the main thread: stop where you are
}

/** The worker's phase word as read (Atomics.load reads a plain number). */
export const workerPhaseOf = (control: Int32Array): WorkerPhase => Atomics.load(control, 0);
/** The main thread's phase word as read. */
export const mainPhaseOf = (control: Int32Array): MainPhase => Atomics.load(control, 1);

export interface StepWorkerInit {
  backend: string;
  logLevel: string;
  config: ModelConfig;
  chunkBytes: number;
  /** [worker phase, main phase] */
  control: Int32Array;
  /** UTF-8 error text when the worker phase is Error */
  errorText: Uint8Array;
}

/** One step's shared buffers, allocated by the main thread; shapes in the comments (h: the first caption of the worker's share). */
export interface StepBuffers {
  // main -> worker, with the request
  ids: Int32Array; // (B, Lp) token ids, 0-padded
  captionParams: Float32Array; // the caption encoder's parameters, concatenated in `captionNames` order
  blockParams: Float32Array; // the similarity block's parameters, in `blockNames` order
  // main -> worker at Regions
  regions: Float32Array; // (nImg, K, D)
  vGlobal: Float32Array; // (nImg, D)
  // worker -> main at Scores
  sims: Float32Array; // (nImg, B - h)
  capBnMean: Float32Array; // (B - h), modules with a per-caption BatchNorm only
  capBnVar: Float32Array; // (B - h), as capBnMean
  // main -> worker at DS
  dS: Float32Array; // (nImg, B - h)
  // worker -> main at ShareGrads
  dRegions: Float32Array; // (nImg, K, D)
  dVGlobal: Float32Array; // (nImg, D)
  dBlockParams: Float32Array; // in `blockNames` order
  // worker -> main at CaptionGrads
  dCaptionParams: Float32Array; // its share's part, in `captionNames` order
}

/** The request that starts a step on the worker. */
export interface StepRequest {
  type: 'step';
  lengths: number[]; // (B), longest first
  nImg: number;
  K: number; // regions per image
  h: number; // the worker encodes and scores captions [h, B)
  stepSeed: number;
  dropout: number;
  captionNames: [string, number[]][]; // name, shape
  blockNames: [string, number[]][];
  buf: StepBuffers;
}

export type ToStepWorker = StepRequest | { type: 'profile'; on: boolean };

/** Element count of a shape. */
export const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Views of consecutive tensors in one flat array, in `shapes` order. */
export function splitFlat(flat: Float32Array, shapes: number[][]): Float32Array[] {
  let o = 0;
  return shapes.map((s) => {
    const n = sizeOf(s);
    const v = flat.subarray(o, o + n);
    o += n;
    return v;
  });
}
