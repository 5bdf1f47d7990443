// Random inputs for the benchmark: unit-norm encoded images/captions (as runtime/encode.ts would produce them,
// already in SharedArrayBuffers so the score pool shares them without a copy), raw region features, token captions
// and a training batch. Values do not change the work done, only the shapes do; the generator is a small xorshift so
// that filling hundreds of MB takes well under a second per 100 MB.
import { REGIONS } from '../model/config.js';
import { CAPTION_LENGTH_COUNTS } from './figures.js';
import type { EncodedCaptions, EncodedImages } from '../runtime/encode.js';
import type { TrainBatch } from '../train/step.js';
import { sharedFloat32, sharedInt32 } from '../ops/shared.js';

/** xorshift32 stream of floats in [0, 1). */
class FastRandom {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.s = x;
    return x / 4294967296;
  }
  fill(out: Float32Array, lo: number, hi: number): Float32Array {
    const w = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + w * this.next();
    return out;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Fill with U(-1, 1) and scale every row of `dim` values to unit L2 norm. */
function unitRows(out: Float32Array, dim: number, r: FastRandom): Float32Array {
  r.fill(out, -1, 1);
  for (let o = 0; o < out.length; o += dim) {
    let s = 0;
    for (let i = o; i < o + dim; i++) s += out[i] * out[i];
    const k = 1 / Math.sqrt(s || 1);
    for (let i = o; i < o + dim; i++) out[i] *= k;
  }
  return out;
}

/** n encoded images: 36 unit-norm regions and a unit-norm VisualSA vector each. */
export function randomEncodedImages(n: number, D: number, seed: number): EncodedImages {
  const r = new FastRandom(seed);
  return { n, regions: unitRows(sharedFloat32(n * REGIONS * D), D, r), vGlobal: unitRows(sharedFloat32(n * D), D, r) };
}

/** n caption token counts drawn from CAPTION_LENGTH_COUNTS. */
export function captionLengths(n: number, seed: number): number[] {
  const r = new FastRandom(seed);
  const table = Object.entries(CAPTION_LENGTH_COUNTS).map(([L, c]) => [Number(L), c] as const);
  const total = table.reduce((a, [, c]) => a + c, 0);
  return Array.from({ length: n }, () => {
    let u = r.next() * total;
    for (const [L, c] of table) if ((u -= c) < 0) return L;
    return table[table.length - 1][0];
  });
}

/** n encoded captions of the given lengths: unit-norm words and a unit-norm TextSA vector each. */
export function randomEncodedCaptions(lens: number[], D: number, seed: number): EncodedCaptions {
  const r = new FastRandom(seed);
  const n = lens.length;
  const lengths = sharedInt32(n);
  lengths.set(lens);
  const offsets = sharedInt32(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + lens[i];
  return {
    n,
    lengths,
    offsets,
    words: unitRows(sharedFloat32(offsets[n] * D), D, r),
    tGlobal: unitRows(sharedFloat32(n * D), D, r),
  };
}

/** Region features in [0, 1) (post-ReLU-like), (n, 36, imgDim). */
export function randomRegionFeatures(n: number, imgDim: number, seed: number): Float32Array {
  return new FastRandom(seed).fill(new Float32Array(n * REGIONS * imgDim), 0, 1);
}

/** Token captions of the given lengths: <start>=1, words in [4, vocab), <end>=2 (0 is <pad>, 3 <unk>). */
export function randomTokens(lens: number[], vocab: number, seed: number): Int32Array[] {
  const r = new FastRandom(seed);
  const out: Int32Array[] = [];
  for (const len of lens) {
    const t = new Int32Array(len);
    t[0] = 1;
    for (let i = 1; i < len - 1; i++) t[i] = 4 + r.int(vocab - 4);
    t[len - 1] = 2;
    out.push(t);
  }
  return out;
}

/**
 * A training batch of B random images and B captions of the benchmark's lengths, longest first (as the batches
 * of vsl train and the reference's collate_fn are), with a symmetric TF-IDF-like image similarity.
 */
export function randomTrainBatch(B: number, imgDim: number, vocab: number, seed: number): TrainBatch {
  const lens = captionLengths(B, seed + 3).sort((a, b) => b - a);
  const toks = randomTokens(lens, vocab, seed + 1);
  const len = lens[0];
  const ids = new Int32Array(B * len);
  toks.forEach((t, i) => ids.set(t, i * len));
  const r = new FastRandom(seed + 2);
  const imageSim = new Float32Array(B * B);
  for (let i = 0; i < B; i++) {
    imageSim[i * B + i] = 1;
    for (let j = i + 1; j < B; j++) imageSim[i * B + j] = imageSim[j * B + i] = 0.3 * r.next();
  }
  return {
    images: randomRegionFeatures(B, imgDim, seed),
    tokens: { ids, lengths: lens, maxLen: len },
    imageSim,
    captionSim: null,
  };
}
