// A training step on two cores (the single-threaded wasm/cpu backends): the training worker (stepWorker.ts)
// encodes the captions and scores the last captions of the batch, the main thread encodes the images and scores
// the first ones; the caption encoder's and the image encoder's backward passes overlap too.
//
// The main thread's tape sees the worker's work as three custom ops. `captions` (forward: wait for the worker's
// word embeddings; gradient: send it dLoss/d(words) of the whole batch and return at once). `launch`, recorded
// before the main share's scores (forward: send the image side; gradient, which runs after the main share's
// backward: wait for and return the worker's share gradients) and `collect`, recorded after them (forward: wait
// for the worker's scores; gradient, which runs first: send dLoss/dScores, so that the worker's backward
// overlaps the main share's). The caption encoder's gradients arrive after the tape, in finish().
import * as tf from '@tensorflow/tfjs';
import { REGIONS, type ModelConfig } from '../model/config.js';
import type { CaptionBnStats } from '../model/similarityModule.js';
import { moduleOf } from '../model/modules.js';
import { blockParamNames, captionChunks, captionRange, chunkedScores, keepCaptionStats } from './chunkedScores.js';
import { checkHeap } from '../ops/memoryGuard.js';
import { stage } from '../ops/profile.js';
import { sharedFloat32, sharedInt32 } from '../ops/shared.js';
import type { StepEngine, StepStart } from './stepEngine.js';
import type { StepPartner } from './stepPartner.js';
import { MainPhase, sizeOf, splitFlat, WorkerPhase, type StepBuffers, type StepRequest } from './stepProtocol.js';
import type { CustomFn } from '../ops/tape.js';

/** The caption side's parameters: the word embedding, the bi-GRU and TextSA. */
function captionParamNames(names: string[]): string[] {
  return names.filter((n) => n.startsWith('txt_enc.') || n.startsWith('sim_enc.t_global_w.'));
}

/**
 * The first caption of the worker's share, chosen to balance the two score phases (the threads meet when the
 * scores are complete, and when the share gradients are). A caption costs its length plus a little per caption
 * (its global node and score) per forward, as each length bucket is padded to its own longest caption; a
 * backward costs twice that, plus one forward more for the chunks that are recomputed (all but a share's last).
 */
export function splitPoint(lengths: number[], nImg: number, c: ModelConfig, chunkBytes: number): number {
  const n = lengths.length;
  const cost = (a: number, b: number) => {
    const share = lengths.slice(a, b);
    const chunks = captionChunks(share, nImg, c, chunkBytes);
    const tokens = (x: number, y: number) => share.slice(x, y).reduce((s, L) => s + L + 2, 0);
    const fwd = tokens(0, share.length);
    return { fwd, bwd: 2 * fwd + (chunks.length > 1 ? tokens(0, chunks[chunks.length - 1][0]) : 0) };
  };
  let best = 1;
  let bestCost = Infinity;
  for (let h = 1; h < n; h++) {
    const [m, w] = [cost(0, h), cost(h, n)];
    const total = Math.max(m.fwd, w.fwd) + Math.max(m.bwd, w.bwd);
    if (total < bestCost) {
      bestCost = total;
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
  sentDWords: boolean;
}

function buffers(s: StepStart, h: number, captionSize: number, blockSize: number): StepBuffers {
  const B = s.tokens.lengths.length;
  const [Lp, Lr, D] = [s.tokens.maxLen, s.tokens.lengths[h], s.config.embedSize];
  const ids = sharedInt32(B * Lp);
  ids.set(s.tokens.ids);
  const f = sharedFloat32;
  return {
    ids,
    captionParams: f(captionSize),
    blockParams: f(blockSize),
    words: f(B * Lp * D),
    tGlobal: f(B * D),
    regions: f(s.nImg * REGIONS * D),
    vGlobal: f(s.nImg * D),
    sims: f(s.nImg * (B - h)),
    capBnMean: f(B - h),
    capBnVar: f(B - h),
    dS: f(s.nImg * (B - h)),
    dRegions: f(s.nImg * REGIONS * D),
    dVGlobal: f(s.nImg * D),
    dWordsShare: f((B - h) * Lr * D),
    dTGlobalShare: f((B - h) * D),
    dBlockParams: f(blockSize),
    dWords: f(B * Lp * D),
    dTGlobal: f(B * D),
    dCaptionParams: f(captionSize),
  };
}

/** Copy the registry's current values of `names` into `out`, one after the other. */
function writeParams(s: StepStart, names: string[], out: Float32Array): void {
  let o = 0;
  for (const n of names) {
    const d = s.reg.get(n).dataSync() as Float32Array;
    out.set(d, o);
    o += d.length;
  }
}

export function twoThreadEngine(partner: StepPartner, chunkBytes: number): StepEngine {
  let st: Step | null = null;
  const step = () => {
    if (!st) throw new Error('two-thread engine: no step begun');
    return st;
  };
  return {
    begin(s) {
      const names = s.reg.trainable().map((e) => e.spec.name);
      const captionNames = captionParamNames(names);
      const blockNames = blockParamNames(names);
      const shapes = (ns: string[]) => ns.map((n) => [n, [...s.reg.get(n).shape]] as [string, number[]]);
      const size = (ns: string[]) => ns.reduce((a, n) => a + sizeOf([...s.reg.get(n).shape]), 0);
      const h = splitPoint(s.tokens.lengths, s.nImg, s.config, chunkBytes);
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
      st = { req, buf, captionNames, blockNames, sentDS: false, sentDWords: false };
      partner.begin(req);
    },

    captionSide(w, c, tokens) {
      const t = step();
      const [B, Lp, D] = [tokens.lengths.length, tokens.maxLen, c.embedSize];
      // one tensor (B, Lp + 1, D) out of the op (tfjs' customGrad has one output): TextSA's vector, then the words
      const captions = tf.customGrad(((anchor: tf.Tensor) => {
        partner.waitFor(WorkerPhase.Words, 'caption encodings');
        const both = tf.concat([tf.tensor3d(t.buf.tGlobal, [B, 1, D]), tf.tensor3d(t.buf.words, [B, Lp, D])], 1);
        return {
          value: both,
          gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
            stage('thread handover', () => {
              const d = dy as tf.Tensor3D;
              t.buf.dTGlobal.set(tf.slice(d, [0, 0, 0], [B, 1, D]).dataSync());
              t.buf.dWords.set(tf.slice(d, [0, 1, 0], [B, Lp, D]).dataSync());
            });
            t.sentDWords = true;
            partner.signal(MainPhase.DWords);
            return [tf.zerosLike(anchor)]; // its real gradient comes in finish()
          },
        };
      }) as unknown as CustomFn);
      // any caption parameter anchors the op on the tape, so that its gradient runs
      const both = captions(w.t(t.captionNames[0])) as tf.Tensor3D;
      const words = tf.slice(both, [0, 1, 0], [B, Lp, D]);
      const tGlobal = tf.slice(both, [0, 0, 0], [B, 1, D]).reshape<tf.Tensor2D>([B, D]);
      return { words, tGlobal, lengths: tokens.lengths };
    },

    score(w, c, img, cap) {
      const t = step();
      checkHeap('training step, encoders');
      const { h, nImg } = t.req;
      const B = cap.lengths.length;
      const params = t.blockNames.map((n) => w.t(n));
      const captionStats: CaptionBnStats[] = [];
      const rest = captionRange(cap.words, cap.tGlobal, cap.lengths, h, B);
      const shapes = [img.regions, img.vGlobal, rest.words, rest.tGlobal, ...params].map((x) => x.shape);
      const launch = tf.customGrad(((r: tf.Tensor, v: tf.Tensor) => {
        stage('thread handover', () => {
          t.buf.regions.set(r.dataSync());
          t.buf.vGlobal.set(v.dataSync());
        });
        partner.signal(MainPhase.Regions);
        return {
          value: tf.scalar(0),
          gradFunc: () => {
            partner.waitFor(WorkerPhase.ShareGrads, 'share gradients');
            const b = t.buf;
            const flat = [
              b.dRegions,
              b.dVGlobal,
              b.dWordsShare,
              b.dTGlobalShare,
              ...splitFlat(b.dBlockParams, shapes.slice(4)),
            ];
            return flat.map((a, i) => tf.tensor(a, shapes[i]));
          },
        };
      }) as unknown as CustomFn);
      const token = launch(img.regions, img.vGlobal, rest.words, rest.tGlobal, ...params);
      const local = chunkedScores(
        c,
        img,
        captionRange(cap.words, cap.tGlobal, cap.lengths, 0, h),
        new Map(t.blockNames.map((n, i) => [n, params[i]])),
        { chunkBytes, captionStats },
      );
      const collect = tf.customGrad(() => {
        partner.waitFor(WorkerPhase.Scores, 'scores');
        if (moduleOf(c).captionBatchNorm)
          keepCaptionStats(captionStats, tf.tensor1d(t.buf.capBnMean), tf.tensor1d(t.buf.capBnVar));
        return {
          value: tf.tensor2d(t.buf.sims, [nImg, B - h]),
          gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
            stage('thread handover', () => t.buf.dS.set((dy as tf.Tensor).dataSync()));
            t.sentDS = true;
            partner.signal(MainPhase.DS);
            return [tf.scalar(0)]; // the token carries no value
          },
        };
      });
      return { sims: tf.concat([local, collect(token) as tf.Tensor2D], 1), captionStats };
    },

    finish() {
      const t = step();
      st = null;
      // a loss that does not reach the worker's outputs sends no gradient for them: the worker still waits
      if (!t.sentDS) partner.signal(MainPhase.DS);
      if (!t.sentDWords) partner.signal(MainPhase.DWords);
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
