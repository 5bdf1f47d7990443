// The (nImg, nCap) score matrix of encoded images and captions, block by block: captions are grouped by
// length (little padding), each image meets a whole caption block with plain 2-D products, and only one
// block lives on the device at a time, so memory does not grow with the number of captions.
import * as tf from '@tensorflow/tfjs';
import { REGIONS, type ModelConfig } from '../model/config.js';
import { blockScores } from '../model/similarity.js';
import type { Weights } from '../model/weights.js';
import { checkHeap } from '../ops/memoryGuard.js';
import type { EncodedCaptions, EncodedImages } from './encode.js';

/**
 * Default block: 5 images x 250 captions, as fast as larger blocks on a fraction of their heap (the figures are in
 * docs/performance.md, Evaluation memory).
 */
export const DEFAULT_IMAGE_BLOCK = 5;
export const DEFAULT_CAPTION_BLOCK = 250;

export interface ScoreOptions {
  imageBlock?: number; // images per block (DEFAULT_IMAGE_BLOCK)
  captionBlock?: number; // captions per block (DEFAULT_CAPTION_BLOCK)
  imageRange?: [number, number]; // a sub-range of images (COCO-1K folds, worker shards)
  captionRange?: [number, number];
  onProgress?: (pairsDone: number, pairsTotal: number) => void;
}

/** Caption blocks of at most `size` captions of similar length: lists of caption indices. */
function captionBlocks(lengths: Int32Array, range: [number, number], size: number): number[][] {
  const idx: number[] = [];
  for (let c = range[0]; c < range[1]; c++) idx.push(c);
  idx.sort((a, b) => lengths[b] - lengths[a] || a - b);
  const blocks: number[][] = [];
  for (let s = 0; s < idx.length; s += size) blocks.push(idx.slice(s, s + size));
  return blocks;
}

/** Scores as float32, row-major (nImg of the range, nCap of the range). */
export function scoreMatrix(
  w: Weights,
  c: ModelConfig,
  img: EncodedImages,
  cap: EncodedCaptions,
  o: ScoreOptions = {},
): Float32Array {
  const D = c.embedSize;
  const [i0, i1] = o.imageRange ?? [0, img.n];
  const [c0, c1] = o.captionRange ?? [0, cap.n];
  const nImg = i1 - i0;
  const nCap = c1 - c0;
  const out = new Float32Array(nImg * nCap);
  const ib = o.imageBlock ?? DEFAULT_IMAGE_BLOCK;
  const blocks = captionBlocks(cap.lengths, [c0, c1], o.captionBlock ?? DEFAULT_CAPTION_BLOCK);
  const total = nImg * nCap;
  let done = 0;
  for (const block of blocks) {
    const Lp = cap.lengths[block[0]];
    const padded = new Float32Array(block.length * Lp * D);
    const tg = new Float32Array(block.length * D);
    block.forEach((ci, r) => {
      padded.set(cap.words.subarray(cap.offsets[ci] * D, cap.offsets[ci + 1] * D), r * Lp * D);
      tg.set(cap.tGlobal.subarray(ci * D, (ci + 1) * D), r * D);
    });
    const words = tf.tensor3d(padded, [block.length, Lp, D]);
    const tGlobal = tf.tensor2d(tg, [block.length, D]);
    const lengths = block.map((ci) => cap.lengths[ci]);
    for (let s = i0; s < i1; s += ib) {
      const e = Math.min(i1, s + ib);
      const sims = tf.tidy(() => {
        const regions = tf.tensor3d(img.regions.subarray(s * REGIONS * D, e * REGIONS * D), [e - s, REGIONS, D]);
        const vGlobal = tf.tensor2d(img.vGlobal.subarray(s * D, e * D), [e - s, D]);
        const r = blockScores(w, c, { regions, vGlobal }, { words, tGlobal, lengths }, false);
        checkHeap('scoring');
        return r.sims.dataSync() as Float32Array;
      });
      for (let m = 0; m < e - s; m++) {
        const row = (s - i0 + m) * nCap;
        block.forEach((ci, r) => (out[row + ci - c0] = sims[m * block.length + r]));
      }
      done += (e - s) * block.length;
      o.onProgress?.(done, total);
    }
    tf.dispose([words, tGlobal]);
  }
  return out;
}
