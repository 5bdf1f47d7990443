// Encode a whole split once for evaluation: every image's regions and VisualSA vector, every caption's
// words and TextSA vector, kept host-side as float32 (not the reference's float64 copies of every image
// five times), so that device memory stays bounded by one block.
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import { REGIONS } from '../model/config.js';
import { evalMode, type TokenBatch } from '../model/encoders.js';
import { captionSide, imageSide } from '../model/sgraf.js';
import type { Weights } from '../model/weights.js';
import { sharedFloat32 } from '../ops/shared.js';

export interface EncodedImages {
  n: number;
  regions: Float32Array; // (n, 36, D)
  vGlobal: Float32Array; // (n, D)
}

export interface EncodedCaptions {
  n: number;
  lengths: Int32Array; // tokens incl. <start>/<end>
  offsets: Int32Array; // first row of caption c in `words` (n + 1 entries)
  words: Float32Array; // (Σ lengths, D), unpadded
  tGlobal: Float32Array; // (n, D)
}

/** Images in batches (rows read on demand): regions and v̄ per image. */
export function encodeImages(
  w: Weights,
  c: ModelConfig,
  n: number,
  readRows: (start: number, end: number) => Float32Array,
  batch = 100,
  onProgress?: (done: number) => void,
): EncodedImages {
  const D = c.embedSize;
  // shared memory: the scoring workers read the encodings in place, so handing them over costs no second
  // copy (on COCO 5K a large one: docs/performance.md, Evaluation memory)
  const regions = sharedFloat32(n * REGIONS * D);
  const vGlobal = sharedFloat32(n * D);
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    tf.tidy(() => {
      const x = tf.tensor3d(readRows(s, e), [e - s, REGIONS, c.imgDim]);
      const { side } = imageSide(w, c, x, evalMode());
      regions.set(side.regions.dataSync(), s * REGIONS * D);
      vGlobal.set(side.vGlobal.dataSync(), s * D);
    });
    onProgress?.(e);
  }
  return { n, regions, vGlobal };
}

/**
 * The layout of `tokens`' encodings, zero-filled on shared memory (a score worker pool reads them in place): the
 * words of caption i at offsets[i] .. offsets[i + 1] (rows of D), its t̄ at row i.
 */
export function captionLayout(tokens: readonly Int32Array[], D: number): EncodedCaptions {
  const n = tokens.length;
  const lengths = Int32Array.from(tokens, (t) => t.length);
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + lengths[i];
  return { n, lengths, offsets, words: sharedFloat32(offsets[n] * D), tGlobal: sharedFloat32(n * D) };
}

/** Captions (already tokenised) in batches of similar length: words and t̄ per caption. */
export function encodeCaptionTokens(
  w: Weights,
  c: ModelConfig,
  tokens: Int32Array[],
  batch = 128,
  onProgress?: (done: number) => void,
): EncodedCaptions {
  const D = c.embedSize;
  const out = captionLayout(tokens, D);
  const { n, lengths, offsets, words, tGlobal } = out;
  const order = [...Array(n).keys()].sort((a, b) => lengths[b] - lengths[a]);
  let done = 0;
  for (let s = 0; s < n; s += batch) {
    const idx = order.slice(s, s + batch);
    const Lp = lengths[idx[0]];
    const ids = new Int32Array(idx.length * Lp);
    idx.forEach((ci, r) => ids.set(tokens[ci], r * Lp));
    const tb: TokenBatch = { ids, lengths: idx.map((ci) => lengths[ci]), maxLen: Lp };
    tf.tidy(() => {
      const side = captionSide(w, c, tb, evalMode());
      const wd = side.words.dataSync() as Float32Array;
      const tg = side.tGlobal.dataSync() as Float32Array;
      idx.forEach((ci, r) => {
        words.set(wd.subarray(r * Lp * D, (r * Lp + lengths[ci]) * D), offsets[ci] * D);
        tGlobal.set(tg.subarray(r * D, (r + 1) * D), ci * D);
      });
    });
    done += idx.length;
    onProgress?.(done);
  }
  return out;
}
