// The (nImg, nCap) training scores of a batch (or of one thread's share of it) on this thread, in caption chunks
// that fit the device. At batch 128 and 1024-d the pairs of one share do not all fit the wasm heap with their
// gradients: then every chunk but the last keeps only its scores in the forward pass and is recomputed under a
// tape of its own in the backward pass, while the last one stays on the caller's tape (its backward runs first
// and frees its memory before the recomputations start). Within a chunk, captions (sorted by length) are scored
// in length buckets, each padded to its own longest caption rather than the chunk's.
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import { blockScores, type BatchScorer, type CaptionSide, type ImageSide } from '../model/similarity.js';
import { moduleOf } from '../model/modules.js';
import type { CaptionBnStats } from '../model/similarityModule.js';
import { Weights } from '../model/weights.js';
import { checkHeap, refuseIfTooLarge } from '../ops/memoryGuard.js';
import { valueAndGradients } from '../ops/tape.js';

type Range = [number, number];

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

/** Heap bytes one image-caption pair of Lp tokens takes while its chunk is differentiated (the module's estimate). */
export function bytesPerPair(Lp: number, c: ModelConfig): number {
  return moduleOf(c).vectorsPerToken(c) * Lp * c.simDim * 4;
}

/**
 * Caption ranges of at most `budget` bytes each; captions are sorted by length, longest first. The last range
 * (the one kept on the tape: see chunkedScores) is made as large as the budget allows, so that as few captions
 * as possible are recomputed; the ones before it are cut from the start.
 */
export function captionChunks(lengths: number[], nImg: number, c: ModelConfig, budgetBytes: number): Range[] {
  const bytes = (a: number, b: number) => (b - a) * nImg * bytesPerPair(lengths[a], c); // padded to its first
  let tail = lengths.length - 1;
  while (tail > 0 && bytes(tail - 1, lengths.length) <= budgetBytes) tail--;
  const chunks: Range[] = [];
  let start = 0;
  while (start < tail) {
    let end = start + 1;
    while (end < tail && bytes(start, end + 1) <= budgetBytes) end++;
    chunks.push([start, end]);
    start = end;
  }
  chunks.push([tail, lengths.length]);
  return chunks;
}

/**
 * Length buckets of captions [a, b) (sorted longest first): each bucket is padded to its first caption, and
 * grows while that padding stays under `maxWaste` of its tokens, or while it holds fewer than `minSize`
 * captions (a bucket costs a pass over the images of its own).
 */
export function lengthBuckets(lengths: number[], [a, b]: Range, maxWaste = 0.1, minSize = 4): Range[] {
  const out: Range[] = [];
  let start = a;
  while (start < b) {
    let end = start + 1;
    let tokens = lengths[start];
    while (end < b) {
      const waste = 1 - (tokens + lengths[end]) / ((end + 1 - start) * lengths[start]);
      if (waste > maxWaste && end - start >= minSize) break;
      tokens += lengths[end++];
    }
    // a short tail joins the bucket before it rather than paying for a pass of its own
    if (b - end < minSize) end = b;
    out.push([start, end]);
    start = end;
  }
  return out;
}

export interface ChunkedScoresOptions {
  chunkBytes: number;
  /** receives the module's per-caption BatchNorm statistics (kept tensors, caller disposes), in caption order */
  captionStats?: CaptionBnStats[];
}

/**
 * Captions [a, b) of a block (sorted longest first), trimmed to the range's own padded length lengths[a].
 * @param words (nCap, Lp, D) and tGlobal (nCap, D): the whole block's tensors
 */
function captionRange(words: tf.Tensor3D, tGlobal: tf.Tensor2D, lengths: number[], a: number, b: number): CaptionSide {
  const D = words.shape[2];
  return {
    words: tf.slice(words, [a, 0, 0], [b - a, lengths[a], D]),
    tGlobal: tf.slice(tGlobal, [a, 0], [b - a, D]),
    lengths: lengths.slice(a, b),
  };
}

/** Keep the module's per-caption BatchNorm statistics of one share or chunk for the caller (who disposes them). */
export function keepCaptionStats(
  into: CaptionBnStats[] | undefined,
  mean: tf.Tensor1D,
  varUnbiased: tf.Tensor1D,
): void {
  into?.push({ mean: tf.keep(mean), varUnbiased: tf.keep(varUnbiased) });
}

/** Scores of captions [a, b) of `cap` against every image, bucket by bucket, under the current tape. */
function rangeScores(
  w: Weights,
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
  range: Range,
  captionStats?: CaptionBnStats[],
): tf.Tensor2D {
  const parts = lengthBuckets(cap.lengths, range).map(([a, b]) => {
    const r = blockScores(w, c, img, captionRange(cap.words, cap.tGlobal, cap.lengths, a, b), true);
    if (r.captionStats) keepCaptionStats(captionStats, r.captionStats.mean, r.captionStats.varUnbiased);
    return r.sims;
  });
  return parts.length === 1 ? parts[0] : tf.concat(parts, 1);
}

/**
 * Differentiable (nImg, nCap) scores of a training batch on this thread, in caption chunks that fit the heap.
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
  const nImg = img.regions.shape[0];
  const nCap = cap.lengths.length;
  const chunks = captionChunks(cap.lengths, nImg, c, opts.chunkBytes);
  const largest = Math.max(...chunks.map(([a, b]) => (b - a) * nImg * bytesPerPair(cap.lengths[a], c)));
  refuseIfTooLarge(`training step (${chunks.length} chunks)`, largest);
  const weightsOf = (ts: tf.Tensor[]) => {
    const byName = new Map(names.map((n, i) => [n, ts[i]]));
    return new Weights((n) => {
      const t = byName.get(n);
      if (!t) throw new Error(`block parameter ${n} was not passed`);
      return t;
    });
  };
  const last = chunks[chunks.length - 1];
  // recorded first, so that its recomputations run after the last chunk's backward has freed its memory
  const head = chunks.length > 1 ? recomputed(c, img, cap, params, chunks.slice(0, -1), weightsOf, opts) : null;
  const w = weightsOf(names.map((n) => params.get(n)!));
  const tail = rangeScores(w, c, img, cap, last, opts.captionStats);
  w.dispose(); // the tape keeps what it needs of the derived weights
  checkHeap('training step, forward');
  if (!head) return tail;
  if (last[1] !== nCap) throw new Error('chunkedScores: the last chunk must end the block');
  return tf.concat([head, tail], 1);
}

/**
 * Scores of the caption chunks `chunks` (the first ones of the block) as one op that keeps only its inputs:
 * its gradient recomputes each chunk under a tape of its own and adds up the chunks' gradients.
 */
function recomputed(
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
  params: Map<string, tf.Tensor>,
  chunks: Range[],
  weightsOf: (ts: tf.Tensor[]) => Weights,
  opts: ChunkedScoresOptions,
): tf.Tensor2D {
  const names = [...params.keys()];
  const nImg = img.regions.shape[0];
  const end = chunks[chunks.length - 1][1];
  const f = tf.customGrad((...args: unknown[]) => {
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
    const side = { words, tGlobal, lengths: cap.lengths };
    const w = weightsOf(ps);
    const parts = chunks.map((range) =>
      tf.tidy(() => {
        const s = rangeScores(w, c, { regions, vGlobal }, side, range, opts.captionStats);
        checkHeap('training step, forward');
        return s;
      }),
    );
    w.dispose();
    return {
      value: parts.length === 1 ? parts[0] : tf.concat(parts, 1),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const dS = dy as tf.Tensor2D;
        const [sRegions, sVGlobal, sWords, sTGlobal, ...sPs] = saved as [
          tf.Tensor3D,
          tf.Tensor2D,
          tf.Tensor3D,
          tf.Tensor2D,
          ...tf.Tensor[],
        ];
        const sums: tf.Tensor[] = [sRegions, sVGlobal, sWords, sTGlobal, ...sPs].map((t) => tf.zerosLike(t));
        for (const [a, b] of chunks) {
          const dSc = tf.slice(dS, [0, a], [nImg, b - a]);
          let wc: Weights | undefined;
          const { value, grads } = valueAndGradients(
            (r, v, wd, tg, ...pp) =>
              tf.sum(
                tf.mul(
                  rangeScores(
                    (wc = weightsOf(pp)),
                    c,
                    { regions: r as tf.Tensor3D, vGlobal: v as tf.Tensor2D },
                    { words: wd as tf.Tensor3D, tGlobal: tg as tf.Tensor2D, lengths: cap.lengths },
                    [a, b],
                  ),
                  dSc,
                ),
              ),
            [sRegions, sVGlobal, sWords, sTGlobal, ...sPs],
            true,
          );
          wc?.dispose();
          checkHeap('training step, backward');
          grads.forEach((g, i) => {
            const s = tf.add(sums[i], g);
            tf.dispose([sums[i], g]);
            sums[i] = s;
          });
          tf.dispose([value, dSc]);
        }
        return sums;
      },
    };
  });
  const out = f(img.regions, img.vGlobal, cap.words, cap.tGlobal, ...names.map((n) => params.get(n)!));
  if (out.shape[1] !== end) throw new Error('chunkedScores: recomputed chunks do not start the block');
  return out;
}

/** The one-thread training scorer: chunkedScores over the block parameters `names`, the module's per-caption statistics in caption order. */
export function chunkedScorer(names: string[], chunkBytes: number): BatchScorer {
  return (w, c, img, cap) => {
    checkHeap('training step, encoders');
    const captionStats: CaptionBnStats[] = [];
    const params = new Map(names.map((n) => [n, w.t(n)]));
    return { sims: chunkedScores(c, img, cap, params, { chunkBytes, captionStats }), captionStats };
  };
}
