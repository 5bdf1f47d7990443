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
import { stage } from './profile.js';

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

/** Host copies of a caption range's inputs, for another thread. */
export interface RemoteInputs {
  nImg: number;
  K: number;
  D: number;
  Lr: number; // padded length of the range's captions
  lengths: number[]; // of the range's captions, longest first
  regions: Float32Array; // (nImg, K, D)
  vGlobal: Float32Array; // (nImg, D)
  words: Float32Array; // (nr, Lr, D)
  tGlobal: Float32Array; // (nr, D)
  params: [string, number[], Float32Array][]; // block parameters: name, shape, values
}
export interface RemoteScores {
  sims: Float32Array; // (nImg, nr)
  safMean: Float32Array; // (nr), SAF only
  safVar: Float32Array; // (nr), SAF only
}
export interface RemoteGradients {
  regions: Float32Array;
  vGlobal: Float32Array;
  words: Float32Array;
  tGlobal: Float32Array;
  params: Float32Array[]; // in the order of RemoteInputs.params
}

/**
 * Another thread that scores and differentiates a caption range of the batch (engine/remoteBlock.ts).
 * Called in this order per step: startForward, scores, startBackward, gradients; the start calls return
 * at once, the others wait for the thread.
 */
export interface RemoteBlock {
  startForward(inputs: RemoteInputs): void;
  scores(): RemoteScores;
  startBackward(dS: Float32Array): void;
  gradients(): RemoteGradients;
}

export interface ChunkedScoresOptions {
  chunkBytes: number;
  /** receives SAF's per-caption BatchNorm statistics (kept tensors, caller disposes), in caption order */
  safStats?: SafCaptionStats[];
  /** a second thread that takes the last captions of the batch */
  remote?: RemoteBlock;
}

/**
 * The first caption of the remote share, chosen to minimise the step's time. The two threads meet twice: when
 * the scores are complete (forward) and when the remote gradients are (backward). In units of one forward over
 * a caption (its length), the local share costs 1 forward + 2 backward where it fits one chunk (3 backward where
 * it needs recomputation); the remote share costs 1 forward for the scores, then 3 backward (its forward again
 * under its tape, 4 if it needs recomputation there too).
 */
export function remoteSplit(lengths: number[], nImg: number, D: number, chunkBytes: number): number {
  const n = lengths.length;
  const total = lengths.reduce((a, b) => a + b, 0);
  let best = 1;
  let bestCost = Infinity;
  let head = 0;
  for (let h = 1; h < n; h++) {
    head += lengths[h - 1];
    const tail = total - head;
    const localBack = h * nImg * bytesPerPair(lengths[0], D) <= chunkBytes ? 2 : 3;
    const remoteBack = (n - h) * nImg * bytesPerPair(lengths[h], D) <= chunkBytes ? 3 : 4;
    const cost = Math.max(head, tail) + Math.max(head * localBack, tail * remoteBack);
    if (cost < bestCost) {
      bestCost = cost;
      best = h;
    }
  }
  return best;
}

/**
 * Captions [a, b) of a block (sorted longest first), trimmed to the range's own padded length lengths[a].
 * @param words (nCap, Lp, D) and tGlobal (nCap, D): the whole block's tensors
 */
function captionRange(words: tf.Tensor3D, tGlobal: tf.Tensor2D, lengths: number[], a: number, b: number): CaptionSide {
  const D = words.shape[2];
  return {
    words: tf.slice(words, [a, 0, 0], [b - a, lengths[a], D]) as tf.Tensor3D,
    tGlobal: tf.slice(tGlobal, [a, 0], [b - a, D]) as tf.Tensor2D,
    lengths: lengths.slice(a, b),
  };
}

/** Keep SAF's per-caption BatchNorm statistics of one share or chunk for the caller (who disposes them). */
function keepSafStats(opts: ChunkedScoresOptions, mean: tf.Tensor1D, varUnbiased: tf.Tensor1D): void {
  opts.safStats?.push({ mean: tf.keep(mean), varUnbiased: tf.keep(varUnbiased) });
}

/**
 * Differentiable (nImg, nCap) scores of a training batch, chunked over captions; with `opts.remote`, the
 * last captions are scored and differentiated on another thread at the same time.
 * @param params the block parameters by name (tensors the gradient is taken for)
 */
export function chunkedScores(
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
  params: Map<string, tf.Tensor>,
  opts: ChunkedScoresOptions,
): tf.Tensor2D {
  if (opts.remote && cap.lengths.length >= 2) return splitScores(c, img, cap, params, { ...opts, remote: opts.remote });
  return localScores(c, img, cap, params, opts);
}

/**
 * Captions [0, h) here, [h, nCap) on the remote thread. Two custom ops bracket the local share on the tape:
 * `launch` (recorded first) hands the remote share over and, in the backward pass (which runs the tape in
 * reverse), is the last to run: it collects the remote gradients. `collect` (recorded after the local
 * share) waits for the remote scores and, in the backward pass, runs before the local share: it starts
 * the remote backward, which then overlaps with the local one.
 */
function splitScores(
  c: ModelConfig,
  img: ImageSide,
  cap: CaptionSide,
  params: Map<string, tf.Tensor>,
  opts: ChunkedScoresOptions & { remote: RemoteBlock },
): tf.Tensor2D {
  const remote = opts.remote;
  const names = [...params.keys()];
  const [nImg, K, D] = img.regions.shape;
  const nCap = cap.lengths.length;
  const h = remoteSplit(cap.lengths, nImg, D, opts.chunkBytes);
  const rest = captionRange(cap.words, cap.tGlobal, cap.lengths, h, nCap);
  const launch = tf.customGrad(((...args: unknown[]) => {
    args.pop(); // save: nothing is needed from the inputs but their shapes
    const [r, v, w, g, ...pp] = args as tf.Tensor[];
    stage('thread handover', () =>
      remote.startForward({
        nImg,
        K,
        D,
        Lr: rest.words.shape[1],
        lengths: rest.lengths,
        regions: r.dataSync() as Float32Array,
        vGlobal: v.dataSync() as Float32Array,
        words: w.dataSync() as Float32Array,
        tGlobal: g.dataSync() as Float32Array,
        params: names.map((n, i) => [n, pp[i].shape, pp[i].dataSync() as Float32Array]),
      }),
    );
    const shapes = [r, v, w, g, ...pp].map((t) => t.shape);
    return {
      value: tf.scalar(0),
      gradFunc: () => {
        const gr = remote.gradients();
        return [gr.regions, gr.vGlobal, gr.words, gr.tGlobal, ...gr.params].map((a, i) => tf.tensor(a, shapes[i]));
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const token = launch(
    img.regions,
    img.vGlobal,
    rest.words,
    rest.tGlobal,
    ...names.map((n) => params.get(n)!),
  ) as tf.Tensor;
  const simsLocal = localScores(c, img, captionRange(cap.words, cap.tGlobal, cap.lengths, 0, h), params, opts);
  const collect = tf.customGrad((() => {
    const r = remote.scores();
    if (c.module === 'SAF') keepSafStats(opts, tf.tensor1d(r.safMean), tf.tensor1d(r.safVar));
    return {
      value: tf.tensor2d(r.sims, [nImg, nCap - h]),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        stage('thread handover', () => remote.startBackward((dy as tf.Tensor).dataSync() as Float32Array));
        return [tf.scalar(0)]; // the token carries no value
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return tf.concat([simsLocal, collect(token) as tf.Tensor2D], 1);
}

/** The scores of all captions on this thread, in chunks that fit the heap. */
function localScores(
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
    if (r.safStats) keepSafStats(opts, r.safStats.mean, r.safStats.varUnbiased);
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
        if (r.safStats) keepSafStats(opts, r.safStats.mean, r.safStats.varUnbiased);
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

/**
 * The training scorer: chunkedScores over the block parameters `names` (their gradients are returned through
 * its custom ops), with SAF's statistics gathered in caption order. The heap is checked on entry, after the
 * encoders ran.
 */
export function chunkedScorer(names: string[], o: { chunkBytes: number; remote?: RemoteBlock }): BatchScorer {
  return (w, c, img, cap) => {
    checkHeap('training step, encoders');
    const safStats: SafCaptionStats[] = [];
    const params = new Map(names.map((n) => [n, w.t(n)]));
    return {
      sims: chunkedScores(c, img, cap, params, { chunkBytes: o.chunkBytes, safStats, remote: o.remote }),
      safStats,
    };
  };
}
