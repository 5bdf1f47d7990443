// The (B, B) score matrix of a training batch, computed in caption chunks with recomputation in the
// backward pass. All 16,384 pairs of a batch of 128 at 1024-d do not fit the wasm heap as one graph: the
// forward keeps only the scores, and the gradient recomputes one chunk at a time under its own tape.
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import {
  blockScores,
  type BatchScorer,
  type CaptionSide,
  type ImageSide,
  type SafCaptionStats,
} from '../model/similarity.js';
import { Weights } from '../model/weights.js';
import { checkHeap, refuseIfTooLarge } from './memoryGuard.js';
import { valueAndGradients } from './tape.js';

/** Parameters the block scores read (everything of sim_enc but the two global-attention modules). */
export function blockParamNames(names: string[]): string[] {
  return names.filter(
    (n) =>
      n.startsWith('sim_enc.') &&
      !n.startsWith('sim_enc.v_global_w.') &&
      !n.startsWith('sim_enc.t_global_w.') &&
      !n.endsWith('running_mean') &&
      !n.endsWith('running_var') &&
      !n.endsWith('num_batches_tracked'),
  );
}

/**
 * Bytes one image-caption pair of Lp tokens takes in the wasm heap while its chunk is differentiated.
 * Measured, not derived: with the hand-written gradients of localSimilarity.ts and graphReasoning.ts the
 * heap grew by 0.58 MB per pair for SGR and 0.35 MB for SAF at Lp 14, D 1024 (32 images x 16 and 48
 * captions), i.e. ~10 and ~6 (Lp, D) float32 tensors' worth; 11 covers both.
 */
export function bytesPerPair(Lp: number, D: number): number {
  return 11 * Lp * D * 4;
}

/** Caption ranges [start, end) of at most `budget` bytes each; captions are sorted by length, longest first. */
export function captionChunks(lengths: number[], nImg: number, D: number, budgetBytes: number): [number, number][] {
  const chunks: [number, number][] = [];
  let start = 0;
  while (start < lengths.length) {
    const per = nImg * bytesPerPair(lengths[start], D); // the first caption of a chunk is its longest
    const n = Math.max(1, Math.min(lengths.length - start, Math.floor(budgetBytes / per)));
    chunks.push([start, start + n]);
    start += n;
  }
  return chunks;
}

export interface ChunkedScoresOptions {
  chunkBytes: number;
  /** receives SAF's per-caption BatchNorm statistics (kept tensors, caller disposes), in caption order */
  safStats?: SafCaptionStats[];
}

/**
 * Captions [a, b) of a block (sorted longest first), trimmed to the range's own padded length lengths[a].
 * @param words (nCap, Lp, D) and tGlobal (nCap, D): the whole block's tensors
 */
export function captionRange(
  words: tf.Tensor3D,
  tGlobal: tf.Tensor2D,
  lengths: number[],
  a: number,
  b: number,
): CaptionSide {
  const D = words.shape[2];
  return {
    words: tf.slice(words, [a, 0, 0], [b - a, lengths[a], D]) as tf.Tensor3D,
    tGlobal: tf.slice(tGlobal, [a, 0], [b - a, D]) as tf.Tensor2D,
    lengths: lengths.slice(a, b),
  };
}

/** Keep SAF's per-caption BatchNorm statistics of one share or chunk for the caller (who disposes them). */
export function keepSafStats(into: SafCaptionStats[] | undefined, mean: tf.Tensor1D, varUnbiased: tf.Tensor1D): void {
  into?.push({ mean: tf.keep(mean), varUnbiased: tf.keep(varUnbiased) });
}

/**
 * Differentiable (nImg, nCap) scores of a training batch on this thread, in caption chunks that fit the heap:
 * one chunk is differentiated under the caller's tape; several keep only their scores in the forward pass and
 * recompute one chunk at a time under a tape of their own in the backward pass.
 * @param params the block parameters by name (tensors the gradient is taken for)
 */
export function chunkedScores(
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
  params: Map<string, tf.Tensor>,
  opts: ChunkedScoresOptions,
): tf.Tensor2D {
  const names = [...params.keys()];
  const [nImg, , D] = img.regions.shape;
  const chunks = captionChunks(cap.lengths, nImg, D, opts.chunkBytes);
  const largest = Math.max(...chunks.map(([a, b]) => (b - a) * nImg * bytesPerPair(cap.lengths[a], D)));
  refuseIfTooLarge(`training step (${chunks.length} chunks)`, largest);
  const weightsOf = (ts: tf.Tensor[]) => {
    const byName = new Map(names.map((n, i) => [n, ts[i]]));
    return new Weights((n) => {
      const t = byName.get(n);
      if (!t) throw new Error(`block parameter ${n} was not passed`);
      return t;
    });
  };
  if (chunks.length === 1) {
    // One chunk holds every pair: differentiate it under the caller's tape, no recomputation needed.
    const r = blockScores(weightsOf(names.map((n) => params.get(n)!)), c, img, cap, true);
    if (r.safStats) keepSafStats(opts.safStats, r.safStats.mean, r.safStats.varUnbiased);
    checkHeap('training step, forward');
    return r.sims;
  }
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const inputs = args as tf.Tensor[];
    save(inputs);
    const [regions, vGlobal, words, tGlobal, ...ps] = inputs as [
      tf.Tensor3D,
      tf.Tensor2D,
      tf.Tensor3D,
      tf.Tensor2D,
      ...tf.Tensor[],
    ];
    const parts = chunks.map(([a, b]) =>
      tf.tidy(() => {
        const capChunk = captionRange(words, tGlobal, cap.lengths, a, b);
        const r = blockScores(weightsOf(ps), c, { regions, vGlobal }, capChunk, true);
        if (r.safStats) keepSafStats(opts.safStats, r.safStats.mean, r.safStats.varUnbiased);
        checkHeap('training step, forward');
        return r.sims;
      }),
    );
    const value = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const dS = dy as tf.Tensor2D;
        const [sRegions, sVGlobal, sWords, sTGlobal, ...sPs] = saved as [
          tf.Tensor3D,
          tf.Tensor2D,
          tf.Tensor3D,
          tf.Tensor2D,
          ...tf.Tensor[],
        ];
        let dRegions: tf.Tensor = tf.zerosLike(sRegions);
        let dVGlobal: tf.Tensor = tf.zerosLike(sVGlobal);
        let dPs: tf.Tensor[] = sPs.map((p) => tf.zerosLike(p));
        const dWords: tf.Tensor[] = [];
        const dTGlobal: tf.Tensor[] = [];
        const Lp = sWords.shape[1];
        for (const [a, b] of chunks) {
          const part = captionRange(sWords, sTGlobal, cap.lengths, a, b);
          const dSc = tf.slice(dS, [0, a], [nImg, b - a]);
          const { value: chunkValue, grads: g } = valueAndGradients(
            (r, v, wd, tg, ...pp) =>
              tf.sum(
                tf.mul(
                  blockScores(
                    weightsOf(pp),
                    c,
                    { regions: r as tf.Tensor3D, vGlobal: v as tf.Tensor2D },
                    { words: wd as tf.Tensor3D, tGlobal: tg as tf.Tensor2D, lengths: part.lengths },
                    true,
                  ).sims,
                  dSc,
                ),
              ),
            [sRegions, sVGlobal, part.words, part.tGlobal, ...sPs],
            true,
          );
          chunkValue.dispose();
          checkHeap('training step, backward');
          const [gr, gv, gw, gt, ...gp] = g;
          const acc = (x: tf.Tensor, y: tf.Tensor) => {
            const s = tf.add(x, y);
            x.dispose();
            y.dispose();
            return s;
          };
          dRegions = acc(dRegions, gr);
          dVGlobal = acc(dVGlobal, gv);
          dPs = dPs.map((d, i) => acc(d, gp[i]));
          dWords.push(
            tf.pad(gw, [
              [0, 0],
              [0, Lp - gw.shape[1]!],
              [0, 0],
            ]),
          );
          gw.dispose();
          dTGlobal.push(gt);
          part.words.dispose();
          part.tGlobal.dispose();
          dSc.dispose();
        }
        return [dRegions, dVGlobal, tf.concat(dWords, 0), tf.concat(dTGlobal, 0), ...dPs];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(img.regions, img.vGlobal, cap.words, cap.tGlobal, ...names.map((n) => params.get(n)!)) as tf.Tensor2D;
}

/** The one-thread training scorer: chunkedScores over the block parameters `names`, SAF's statistics in caption order. */
export function chunkedScorer(names: string[], chunkBytes: number): BatchScorer {
  return (w, c, img, cap) => {
    checkHeap('training step, encoders');
    const safStats: SafCaptionStats[] = [];
    const params = new Map(names.map((n) => [n, w.t(n)]));
    return { sims: chunkedScores(c, img, cap, params, { chunkBytes, safStats }), safStats };
  };
}
