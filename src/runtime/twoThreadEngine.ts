// A training step on two cores (the single-threaded wasm/cpu backends), split by captions at h: the main thread
// encodes the images and its captions [0, h) and scores those against every image; the training worker
// (stepWorker.ts) encodes and scores captions [h, B), forward and backward, so no word embeddings cross between
// the threads, only the image side, the worker's scores and the gradients of both.
//
// The main thread's tape sees the worker's work as two custom ops around its own captions. `launch`, recorded
// right after the image encoder and before this thread's captions (forward: send the image side, so that the
// worker, which has encoded its captions meanwhile, scores at once; gradient, which runs after this thread's
// scores' and caption encoder's backward: wait for and return the worker's share gradients for the image side and
// the block), and `collect`, recorded after this thread's scores (forward: wait for the worker's scores; gradient,
// which runs first: send dLoss/dScores, so that the worker's backward overlaps this thread's). The worker's part of
// the caption encoder's gradients arrives after the tape, in finish(), and is added to this thread's.
import * as tf from '@tensorflow/tfjs';
import { REGIONS, type ModelConfig } from '../model/config.js';
import { captionShare } from '../model/encoders.js';
import { captionSide } from '../model/sgraf.js';
import type { CaptionBnStats } from '../model/similarityModule.js';
import { moduleOf } from '../model/modules.js';
import { blockParamNames, captionChunks, chunkedScores, keepCaptionStats, lengthBuckets } from './chunkedScores.js';
import { checkHeap } from '../ops/memoryGuard.js';
import { stage } from '../ops/profile.js';
import { copyInto, sharedFloat32, sharedInt32 } from '../ops/shared.js';
import { oneThreadEngine, type StepEngine, type StepStart } from './stepEngine.js';
import type { StepPartner } from './stepPartner.js';
import { MainPhase, sizeOf, splitFlat, WorkerPhase, type StepBuffers, type StepRequest } from './stepProtocol.js';
import type { CustomFn } from '../ops/tape.js';

/** The caption side's parameters: the word embedding, the bi-GRU and TextSA. */
function captionParamNames(names: string[]): string[] {
  return names.filter((n) => n.startsWith('txt_enc.') || n.startsWith('sim_enc.t_global_w.'));
}

/**
 * Calibration from a batch-32 profile (`npm run bench -- --profile train-sgr-b32`, docs/performance.md), in FLOPs
 * of the score block's forward: VisualSA's BatchNorm, tanh and dropout passes put the image side's forward at
 * about nine tenths of the block's rate (`imageFwd`); the clipping and Adam step, which only the main thread runs,
 * costs about `optimizer` per parameter; a GRU step of few captions costs as much as one of GRU_MIN_ROWS.
 */
const RATE = { imageFwd: 1.1, optimizer: 250 };
const GRU_MIN_ROWS = 32;

/** About how many parameters the optimizer steps: the embedding, the GRU, the image fc and the D x D Linears. */
function paramCount(c: ModelConfig): number {
  const D = c.embedSize;
  return c.vocabSize * c.wordDim + (c.biGru ? 2 : 1) * 3 * D * (c.wordDim + D) + c.imgDim * D + 4 * D * D;
}

/** Forward and backward FLOPs of one piece of work. */
interface Cost {
  fwd: number;
  bwd: number;
}

/**
 * One image's encoder: the fc on its regions (2·36·imgDim·D) and VisualSA (the local Linear D -> D on every region
 * and the global one on their mean, 2·37·D², and the common one D -> 1 on every region). The fc's input is data,
 * so its backward is its weight gradient alone (1 x forward); VisualSA's is 2 x forward.
 */
function imageCost(c: ModelConfig): Cost {
  const D = c.embedSize;
  const fc = 2 * REGIONS * c.imgDim * D;
  const sa = 2 * (REGIONS + 1) * D * D + 2 * REGIONS * D;
  return { fwd: RATE.imageFwd * (fc + sa), bwd: fc + 2 * sa };
}

/**
 * Captions `lengths` (sorted longest first) as one thread encodes them: the packed bi-GRU over their tokens (per
 * token and direction the input and hidden products, 2·3D·(wordDim + D)) and TextSA over their tokens padded to
 * the first (the local Linear D -> D and the common D -> 1 per token, the global Linear once per caption). The
 * GRU's forward makes one product per time step with as many rows as captions are that long: a step of few rows
 * costs about as much as one of GRU_MIN_ROWS (the weight streams through the cache whatever the rows), so its
 * forward counts every step as at least that many rows. Its backward's per-step product is one of three, and
 * counts as FLOPs.
 */
function captionCost(lengths: number[], c: ModelConfig): Cost {
  const D = c.embedSize;
  const perRow = (c.biGru ? 2 : 1) * 2 * 3 * D * (c.wordDim + D);
  let rows = 0;
  let tokens = 0;
  for (let t = 0; t < (lengths[0] ?? 0); t++) {
    const alive = lengths.filter((L) => L > t).length;
    rows += Math.max(alive, GRU_MIN_ROWS);
    tokens += alive;
  }
  const textSA = lengths.length * (2 * (lengths[0] ?? 0) * (D * D + D) + 2 * D * D);
  return { fwd: perRow * rows + textSA, bwd: 2 * (perRow * tokens + textSA) };
}

/**
 * Captions `lengths` scored against nImg images on one thread, as chunkedScores runs them: per pair the module's
 * pairMflop (measured at 12 tokens and the default D·S = 1024·256), in proportion to the tokens its length bucket
 * is padded to and to D·S. A backward is 2 x forward, plus one forward more for the chunks that are recomputed (all
 * but the last).
 */
function scoreCost(lengths: number[], nImg: number, c: ModelConfig, chunkBytes: number): Cost {
  const perToken = (moduleOf(c).pairMflop * 1e6 * ((c.embedSize * c.simDim) / (1024 * 256))) / 12;
  const chunks = captionChunks(lengths, nImg, c, chunkBytes);
  const padded = chunks.map((range) =>
    lengthBuckets(lengths, range).reduce((a, [x, y]) => a + (y - x) * lengths[x], 0),
  );
  const fwd = nImg * perToken * padded.reduce((a, t) => a + t, 0);
  const recomputed = nImg * perToken * padded.slice(0, -1).reduce((a, t) => a + t, 0);
  return { fwd, bwd: 2 * fwd + recomputed };
}

/** When each thread ends the forward and the backward, in FLOPs, each phase counted from where both threads start it. */
export interface SplitTimes {
  forward: { main: number; worker: number };
  backward: { main: number; worker: number };
}

/**
 * The step split at h, as estimated in FLOPs, both threads running at the same rate. The main thread encodes the
 * images, then its captions [0, h), then scores them; the worker encodes captions [h, B) from the step's start and
 * scores them once the image side has come (after the image encoder). The loss needs both threads' scores, so
 * the forward ends at the later of
 *   main:   image + captions(0, h) + scores(0, h)
 *   worker: max(captions(h, B), image) + scores(h, B)
 * In the backward the main thread differentiates its scores and captions, then needs the worker's share gradients
 * (after the worker's scores' backward) for the image encoder's backward; the worker differentiates its scores,
 * then its captions (the main thread waits for these at the end). The backward ends at the later of
 *   main:   max(scores'(0, h) + captions'(0, h), scores'(h, B)) + image'
 *   worker: scores'(h, B) + captions'(h, B)
 */
export function splitTimes(lengths: number[], nImg: number, c: ModelConfig, chunkBytes: number, h: number): SplitTimes {
  const image = imageCost(c);
  const share = (a: number, b: number) => {
    const part = lengths.slice(a, b);
    return { cap: captionCost(part, c), score: scoreCost(part, nImg, c, chunkBytes) };
  };
  const [m, w] = [share(0, h), share(h, lengths.length)];
  const img = { fwd: nImg * image.fwd, bwd: nImg * image.bwd };
  const nParams = paramCount(c);
  return {
    forward: { main: img.fwd + m.cap.fwd + m.score.fwd, worker: Math.max(w.cap.fwd, img.fwd) + w.score.fwd },
    backward: {
      main: Math.max(m.score.bwd + m.cap.bwd, w.score.bwd) + img.bwd + RATE.optimizer * nParams,
      worker: w.score.bwd + w.cap.bwd,
    },
  };
}

/**
 * The first caption of the worker's share: the h in [1, B) (each thread at least one caption) whose step ends
 * first by splitTimes (the later thread of the forward, plus the later of the backward). A function of the lengths,
 * nImg, the config and the chunk size only, never of timings: every run of a step splits it alike, which exact
 * resume and the trajectory tests need.
 */
export function splitPoint(lengths: number[], nImg: number, c: ModelConfig, chunkBytes: number): number {
  let best = 1;
  let bestCost = Infinity;
  for (let h = 1; h < lengths.length; h++) {
    const t = splitTimes(lengths, nImg, c, chunkBytes, h);
    const cost = Math.max(t.forward.main, t.forward.worker) + Math.max(t.backward.main, t.backward.worker);
    if (cost < bestCost) {
      bestCost = cost;
      best = h;
    }
  }
  return best;
}

interface Step {
  req: StepRequest;
  buf: StepBuffers;
  captionNames: string[];
  blockNames: string[];
  sentDS: boolean;
}

function buffers(s: StepStart, h: number, captionSize: number, blockSize: number): StepBuffers {
  const B = s.tokens.lengths.length;
  const D = s.config.embedSize;
  const ids = sharedInt32(s.tokens.ids.length);
  ids.set(s.tokens.ids);
  const f = sharedFloat32;
  return {
    ids,
    captionParams: f(captionSize),
    blockParams: f(blockSize),
    regions: f(s.nImg * REGIONS * D),
    vGlobal: f(s.nImg * D),
    sims: f(s.nImg * (B - h)),
    capBnMean: f(B - h),
    capBnVar: f(B - h),
    dS: f(s.nImg * (B - h)),
    dRegions: f(s.nImg * REGIONS * D),
    dVGlobal: f(s.nImg * D),
    dBlockParams: f(blockSize),
    dCaptionParams: f(captionSize),
  };
}

/** Copy the registry's current values of `names` into `out`, one after the other. */
function writeParams(s: StepStart, names: string[], out: Float32Array): void {
  let o = 0;
  for (const n of names) o = copyInto(s.reg.get(n), out, o);
}

/**
 * The step engine with the training worker `partner`. `split` chooses the worker's first caption (splitPoint; tests
 * put it elsewhere to check that every split gives the same step).
 */
export function twoThreadEngine(partner: StepPartner, chunkBytes: number, split = splitPoint): StepEngine {
  let st: Step | null = null;
  const step = () => {
    if (!st) throw new Error('two-thread engine: no step begun');
    return st;
  };
  // a batch of one caption (an epoch's short last batch) cannot be split: it runs on this thread
  const alone = oneThreadEngine(chunkBytes);
  let solo = false;
  return {
    begin(s) {
      solo = s.tokens.lengths.length < 2;
      if (solo) return alone.begin(s);
      const names = s.reg.trainable().map((e) => e.spec.name);
      const captionNames = captionParamNames(names);
      const blockNames = blockParamNames(names);
      const shapes = (ns: string[]) => ns.map((n) => [n, [...s.reg.get(n).shape]] as [string, number[]]);
      const size = (ns: string[]) => ns.reduce((a, n) => a + sizeOf([...s.reg.get(n).shape]), 0);
      const h = split(s.tokens.lengths, s.nImg, s.config, chunkBytes);
      const B = s.tokens.lengths.length;
      if (!(h >= 1 && h < B)) throw new Error(`two-thread engine: split ${h} leaves a thread no caption (B = ${B})`);
      const buf = buffers(s, h, size(captionNames), size(blockNames));
      stage('thread handover', () => {
        writeParams(s, captionNames, buf.captionParams);
        writeParams(s, blockNames, buf.blockParams);
      });
      const req: StepRequest = {
        type: 'step',
        lengths: s.tokens.lengths,
        nImg: s.nImg,
        K: REGIONS,
        h,
        stepSeed: s.stepSeed,
        dropout: s.dropout,
        captionNames: shapes(captionNames),
        blockNames: shapes(blockNames),
        buf,
      };
      st = { req, buf, captionNames, blockNames, sentDS: false };
      partner.begin(req);
    },

    scores(w, c, img, tokens, mode) {
      if (solo) return alone.scores(w, c, img, tokens, mode);
      const t = step();
      const { h, nImg } = t.req;
      const B = tokens.lengths.length;
      const params = t.blockNames.map((n) => w.t(n));
      const shapes = [img.regions, img.vGlobal, ...params].map((x) => x.shape);
      const launch = tf.customGrad(((r: tf.Tensor, v: tf.Tensor) => {
        stage('thread handover', () => {
          copyInto(r, t.buf.regions);
          copyInto(v, t.buf.vGlobal);
        });
        partner.signal(MainPhase.Regions);
        return {
          value: tf.scalar(0),
          gradFunc: () => {
            partner.waitFor(WorkerPhase.ShareGrads, 'share gradients');
            const b = t.buf;
            const flat = [b.dRegions, b.dVGlobal, ...splitFlat(b.dBlockParams, shapes.slice(2))];
            return flat.map((a, i) => tf.tensor(a, shapes[i]));
          },
        };
      }) as unknown as CustomFn);
      // the image side goes out first: the worker scores while this thread encodes its own captions
      const token = launch(img.regions, img.vGlobal, ...params);
      const mine = captionShare(tokens, mode, 0, h);
      const cap = captionSide(w, c, mine.tokens, mine.mode);
      checkHeap('training step, encoders');
      const captionStats: CaptionBnStats[] = [];
      const local = chunkedScores(c, img, cap, new Map(t.blockNames.map((n, i) => [n, params[i]])), {
        chunkBytes,
        captionStats,
      });
      const collect = tf.customGrad(() => {
        partner.waitFor(WorkerPhase.Scores, 'scores');
        if (moduleOf(c).captionBatchNorm)
          keepCaptionStats(captionStats, tf.tensor1d(t.buf.capBnMean), tf.tensor1d(t.buf.capBnVar));
        return {
          value: tf.tensor2d(t.buf.sims, [nImg, B - h]),
          gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
            stage('thread handover', () => copyInto(dy as tf.Tensor, t.buf.dS));
            t.sentDS = true;
            partner.signal(MainPhase.DS);
            return [tf.scalar(0)]; // the token carries no value
          },
        };
      });
      return { sims: tf.concat([local, collect(token) as tf.Tensor2D], 1), captionStats };
    },

    finish() {
      if (solo) return alone.finish();
      const t = step();
      st = null;
      // a loss that does not reach the worker's outputs sends no gradient for them: the worker still waits
      if (!t.sentDS) partner.signal(MainPhase.DS);
      partner.waitFor(WorkerPhase.CaptionGrads, 'caption encoder gradients');
      const shapes = t.req.captionNames.map(([, s]) => s);
      const grads = splitFlat(t.buf.dCaptionParams, shapes);
      return new Map(t.captionNames.map((n, i) => [n, tf.tensor(grads[i], shapes[i])]));
    },

    abort() {
      if (st) partner.abort();
      st = null;
    },
  };
}
