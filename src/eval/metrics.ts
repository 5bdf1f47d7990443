// Retrieval metrics of the reference evaluation: i2t / t2i ranks, R@1/5/10, medr, meanr,
// rsum, and the COCO-1K five-fold protocol.
//
// Score matrix: row-major (nImg, nCap), rows = images, columns = captions; caption c belongs to image
// floor(c / 5) (exactly 5 captions per image, stored contiguously, as the reference assumes).
//
// Tie rule (optimistic): the 0-based position of a positive is the number of scores in its row (i2t) or
// column (t2i) that are STRICTLY greater than it, i.e. a positive tied with negatives is placed before them.
// The reference sorts with numpy's unstable argsort, so its tie order is unspecified; with float scores ties
// are rare and the difference negligible. No row or column is sorted: each query is one O(n) counting pass,
// so COCO-5K (5000 x 25000) costs two streaming passes over the matrix.
// Every score must be finite: a NaN or Inf score is an error naming the image and the caption (a diverged model or
// a damaged score file), never a rank (an image whose scores are all NaN would otherwise rank first).
import { VslError } from '../util/errors.js';
import { firstNonFinite, nonFiniteName } from '../util/finite.js';

export const CAPS_PER_IMAGE = 5;

/** Row-major (nImg, nCap) score matrix. Float64Array is accepted too (e.g. averaged ensemble scores). */
export type ScoreMatrix = Float32Array | Float64Array;

/** The five numbers reported for one direction. Recalls are percentages; medr and meanr are 1-based. */
export interface RecallMetrics {
  r1: number;
  r5: number;
  r10: number;
  medr: number;
  meanr: number;
}

/** One direction's metrics plus the 0-based rank of every query (images for i2t, captions for t2i). */
export interface RankedMetrics extends RecallMetrics {
  ranks: Int32Array;
}

export interface EvalResult {
  /** image → text (sentence retrieval, "annotation") */
  i2t: RecallMetrics;
  /** text → image (image retrieval, "search") */
  t2i: RecallMetrics;
  /** sum of the six recalls */
  rsum: number;
  /** mean of the three i2t recalls */
  ar: number;
  /** mean of the three t2i recalls */
  ari: number;
}

export interface EvalResultWithRanks extends EvalResult {
  ranks: { i2t: Int32Array; t2i: Int32Array };
}

function checkShape(sims: ScoreMatrix, nImg: number, nCap: number): void {
  if (!Number.isSafeInteger(nImg) || nImg < 1 || !Number.isSafeInteger(nCap) || nCap < 1) {
    throw new VslError(`score matrix: expected positive integer sizes, found nImg=${nImg}, nCap=${nCap}`);
  }
  if (nCap !== CAPS_PER_IMAGE * nImg) {
    throw new VslError(
      `score matrix: expected ${CAPS_PER_IMAGE} captions per image (nCap = ${CAPS_PER_IMAGE * nImg} for ${nImg} images), found nCap=${nCap}`,
    );
  }
  if (sims.length !== nImg * nCap) {
    throw new VslError(`score matrix: expected ${nImg}x${nCap} = ${nImg * nCap} scores, found ${sims.length}`);
  }
}

/** Where a score matrix came from, for its errors: the file or model, and the offsets of a block in it. */
export interface ScoreSource {
  /** A file or model name the message starts with. */
  source?: string;
  /** Image and caption of the block's first row and column in the whole matrix (fold5 blocks). */
  imageOffset?: number;
  captionOffset?: number;
}

/** Refuse a NaN or Inf score, naming its image and caption (and how many more there are). */
function checkFiniteScores(sims: ScoreMatrix, nCap: number, where: ScoreSource = {}): void {
  const k = firstNonFinite(sims);
  if (k < 0) return;
  let more = 0;
  for (let j = k + 1; j < sims.length; j++) if (sims[j] - sims[j] !== 0) more++;
  const image = Math.floor(k / nCap) + (where.imageOffset ?? 0);
  const caption = (k % nCap) + (where.captionOffset ?? 0);
  throw new VslError(
    `${where.source ?? 'score matrix'}: score of image ${image}, caption ${caption}: expected a finite number, found ${nonFiniteName(sims[k])}` +
      `${more ? ` (and ${more} more non-finite scores)` : ''}; no metrics are computed over NaN or Inf`,
  );
}

/** numpy's median of integer ranks (mean of the two middle values for an even count). */
function median(ranks: Int32Array): number {
  const s = Int32Array.from(ranks).sort();
  const n = s.length;
  const mid = n >> 1;
  return n % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** R@1/5/10, medr = floor(median(rank)) + 1 and meanr = mean(rank) + 1 from 0-based ranks. */
export function metricsFromRanks(ranks: Int32Array): RecallMetrics {
  const n = ranks.length;
  if (n === 0) throw new VslError('metrics: expected at least one query, found none');
  let c1 = 0;
  let c5 = 0;
  let c10 = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const r = ranks[i];
    if (r < 1) c1++;
    if (r < 5) c5++;
    if (r < 10) c10++;
    sum += r;
  }
  return {
    r1: (100 * c1) / n,
    r5: (100 * c5) / n,
    r10: (100 * c10) / n,
    medr: Math.floor(median(ranks)) + 1,
    meanr: sum / n + 1,
  };
}

function rankI2t(sims: ScoreMatrix, nImg: number, nCap: number): Int32Array {
  const ranks = new Int32Array(nImg);
  for (let i = 0; i < nImg; i++) {
    const row = i * nCap;
    let best = -Infinity;
    for (let c = CAPS_PER_IMAGE * i; c < CAPS_PER_IMAGE * (i + 1); c++) if (sims[row + c] > best) best = sims[row + c]!;
    let count = 0;
    for (let j = 0; j < nCap; j++) if (sims[row + j] > best) count++;
    ranks[i] = count;
  }
  return ranks;
}

function rankT2i(sims: ScoreMatrix, nImg: number, nCap: number): Int32Array {
  const pos = new Float64Array(nCap);
  for (let c = 0; c < nCap; c++) pos[c] = sims[Math.floor(c / CAPS_PER_IMAGE) * nCap + c]!;
  // Row-major streaming pass instead of strided column walks: one comparison per matrix entry.
  const counts = new Int32Array(nCap);
  for (let i = 0; i < nImg; i++) {
    const row = i * nCap;
    for (let c = 0; c < nCap; c++) if (sims[row + c] > pos[c]) counts[c]++;
  }
  return counts;
}

/** 0-based i2t rank per image: entries of row i strictly above its best caption (see the tie rule). */
export function i2tRanks(sims: ScoreMatrix, nImg: number, nCap: number): Int32Array {
  checkShape(sims, nImg, nCap);
  checkFiniteScores(sims, nCap);
  return rankI2t(sims, nImg, nCap);
}

/** 0-based t2i rank per caption: entries of column c strictly above the score of image floor(c/5). */
export function t2iRanks(sims: ScoreMatrix, nImg: number, nCap: number): Int32Array {
  checkShape(sims, nImg, nCap);
  checkFiniteScores(sims, nCap);
  return rankT2i(sims, nImg, nCap);
}

/** Image → text: for each image, the best position of its 5 captions in its row sorted descending. */
export function i2t(sims: ScoreMatrix, nImg: number, nCap: number): RankedMetrics {
  const ranks = i2tRanks(sims, nImg, nCap);
  return { ...metricsFromRanks(ranks), ranks };
}

/** Text → image: for each caption, the position of its image in its column sorted descending. */
export function t2i(sims: ScoreMatrix, nImg: number, nCap: number): RankedMetrics {
  const ranks = t2iRanks(sims, nImg, nCap);
  return { ...metricsFromRanks(ranks), ranks };
}

/** rsum, ar and ari from the two directions. */
export function combine(a: RecallMetrics, b: RecallMetrics): EvalResult {
  const i2tSum = a.r1 + a.r5 + a.r10;
  const t2iSum = b.r1 + b.r5 + b.r10;
  return { i2t: { ...a }, t2i: { ...b }, rsum: i2tSum + t2iSum, ar: i2tSum / 3, ari: t2iSum / 3 };
}

/**
 * Both directions, rsum, ar, ari on one score matrix; with `{ ranks: true }` also the per-query ranks. A NaN or Inf
 * score is an error naming `source`, the image and the caption.
 */
export function evaluate(sims: ScoreMatrix, nImg: number, nCap: number, opts?: ScoreSource): EvalResult;
export function evaluate(
  sims: ScoreMatrix,
  nImg: number,
  nCap: number,
  opts: ScoreSource & { ranks: true },
): EvalResultWithRanks;
export function evaluate(
  sims: ScoreMatrix,
  nImg: number,
  nCap: number,
  opts?: ScoreSource & { ranks?: boolean },
): EvalResult | EvalResultWithRanks {
  checkShape(sims, nImg, nCap);
  checkFiniteScores(sims, nCap, opts);
  const ri = rankI2t(sims, nImg, nCap);
  const rt = rankT2i(sims, nImg, nCap);
  const result = combine(metricsFromRanks(ri), metricsFromRanks(rt));
  return opts?.ranks ? { ...result, ranks: { i2t: ri, t2i: rt } } : result;
}

/**
 * Mean over folds (5 for COCO-1K) of every metric, medr, meanr, rsum, ar and ari included, as the reference
 * averages its per-fold rows. The reference then prints that mean with shifted labels ("rsum" = 6·mean(ar),
 * "Average i2t Recall" = mean(ari), "Average t2i Recall" = mean(rsum)); here each field holds
 * what its name says: rsum is mean(rsum), ar is mean(ar), ari is mean(ari).
 */
export function evaluateFold5(folds: readonly EvalResult[]): EvalResult {
  if (folds.length === 0) throw new VslError('fold5: expected at least one fold result, found none');
  const n = folds.length;
  const mean = (get: (r: EvalResult) => number): number => folds.reduce((s, r) => s + get(r), 0) / n;
  const dir = (d: 'i2t' | 't2i'): RecallMetrics => ({
    r1: mean((r) => r[d].r1),
    r5: mean((r) => r[d].r5),
    r10: mean((r) => r[d].r10),
    medr: mean((r) => r[d].medr),
    meanr: mean((r) => r[d].meanr),
  });
  return {
    i2t: dir('i2t'),
    t2i: dir('t2i'),
    rsum: mean((r) => r.rsum),
    ar: mean((r) => r.ar),
    ari: mean((r) => r.ari),
  };
}

/** One fold of a COCO testall split: images [imgStart, imgEnd) and their captions [capStart, capEnd). */
export interface FoldSlice {
  fold: number;
  imgStart: number;
  imgEnd: number;
  capStart: number;
  capEnd: number;
}

/**
 * Cut nImg images / nCap captions into `folds` equal folds (COCO testall: 5 folds of 1000 images / 5000
 * captions). Fold f holds images [f·k, (f+1)·k) and captions [5f·k, 5(f+1)·k), k = nImg / folds, the same
 * pairs as the reference's img_embs[5000f : 5000(f+1) : 5] and cap_embs[5000f : 5000(f+1)].
 */
export function foldSlices(nImg: number, nCap: number, folds = 5): FoldSlice[] {
  if (!Number.isSafeInteger(folds) || folds < 1)
    throw new VslError(`fold5: expected a positive fold count, found ${folds}`);
  if (nCap !== CAPS_PER_IMAGE * nImg) {
    throw new VslError(
      `fold5: expected ${CAPS_PER_IMAGE} captions per image (nCap = ${CAPS_PER_IMAGE * nImg}), found nCap=${nCap}`,
    );
  }
  if (nImg % folds !== 0 || nImg === 0) {
    throw new VslError(`fold5: expected a number of images divisible by ${folds}, found ${nImg}`);
  }
  const k = nImg / folds;
  return Array.from({ length: folds }, (_, f) => ({
    fold: f,
    imgStart: f * k,
    imgEnd: (f + 1) * k,
    capStart: CAPS_PER_IMAGE * f * k,
    capEnd: CAPS_PER_IMAGE * (f + 1) * k,
  }));
}

/** Copy the (fold images × fold captions) block out of a full (nImg, nCap) score matrix. */
export function foldBlock<T extends ScoreMatrix>(sims: T, nImg: number, nCap: number, slice: FoldSlice): T {
  if (sims.length !== nImg * nCap) {
    throw new VslError(`score matrix: expected ${nImg}x${nCap} = ${nImg * nCap} scores, found ${sims.length}`);
  }
  if (slice.imgStart < 0 || slice.imgEnd > nImg || slice.capStart < 0 || slice.capEnd > nCap) {
    throw new VslError(
      `fold ${slice.fold}: expected a block inside ${nImg}x${nCap}, found images [${slice.imgStart},${slice.imgEnd}) captions [${slice.capStart},${slice.capEnd})`,
    );
  }
  const rows = slice.imgEnd - slice.imgStart;
  const cols = slice.capEnd - slice.capStart;
  const out = new (sims.constructor as { new (n: number): T })(rows * cols);
  for (let i = 0; i < rows; i++) {
    const from = (slice.imgStart + i) * nCap + slice.capStart;
    out.set(sims.subarray(from, from + cols), i * cols);
  }
  return out;
}

/**
 * COCO-1K from a full testall matrix: metrics on each diagonal fold block (cross-fold pairs are ignored, as
 * in the reference, which only scores pairs within a fold) and their mean.
 */
export function evaluateFolds(
  sims: ScoreMatrix,
  nImg: number,
  nCap: number,
  folds = 5,
): { folds: EvalResult[]; mean: EvalResult } {
  checkShape(sims, nImg, nCap);
  const results = foldSlices(nImg, nCap, folds).map((s) =>
    evaluate(foldBlock(sims, nImg, nCap, s), s.imgEnd - s.imgStart, s.capEnd - s.capStart),
  );
  return { folds: results, mean: evaluateFold5(results) };
}
