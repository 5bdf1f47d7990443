// Which rows a shard scores, and the blocks it scores them in.
//
// A shard i of n owns image rows [floor(i·N/n), floor((i+1)·N/n)) of the score matrix (N = images; with fold5
// the 5·k images of the five folds, each row scored against its own fold's captions only). Its rows are scored
// in blocks laid on a fixed grid: image blocks of `imageBlock` rows counted from the start of the row's fold
// (0 without fold5), each against every caption of that fold. That is the grid the unsharded run uses, so a
// row is computed in the same image group against the same caption blocks whichever shard it falls in: the
// merged matrix is bit-identical to the unsharded one. A shard boundary inside an image block costs the
// boundary block's other rows (at most imageBlock - 1 on each side), scored and dropped.
import { VslError } from '../util/errors.js';
import { CAPS_PER_IMAGE } from './metrics.js';

export type Range = [number, number];

export interface Shard {
  index: number;
  count: number;
}

/** "i/n" with 0 <= i < n. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(index) || index >= count) {
    throw new VslError(`--shard: expected i/n with 0 <= i < n (e.g. 0/4), found ${JSON.stringify(text)}`);
  }
  return { index, count };
}

/** Rows [floor(i·N/n), floor((i+1)·N/n)) of N. */
export function shardRows(nRows: number, s: Shard): Range {
  return [Math.floor((s.index * nRows) / s.count), Math.floor(((s.index + 1) * nRows) / s.count)];
}

/** The shape of the evaluation: every image once (fold5 = false), or five folds of foldImages images. */
export interface Layout {
  /** Rows of the matrix: the images scored (5·foldImages with fold5). */
  nImages: number;
  fold5: boolean;
  /** Images per fold (fold5 only). */
  foldImages?: number;
}

/** Scores per row: every caption, or the row's fold's 5·k captions. */
export function rowLength(l: Layout): number {
  return CAPS_PER_IMAGE * (l.fold5 ? l.foldImages! : l.nImages);
}

/** The full matrix's shape as `vsl eval --save-sims` writes it. */
export function matrixShape(l: Layout): number[] {
  return l.fold5
    ? [l.nImages / l.foldImages!, l.foldImages!, CAPS_PER_IMAGE * l.foldImages!]
    : [l.nImages, CAPS_PER_IMAGE * l.nImages];
}

/** One unit of scoring and of resumption: grid-aligned image rows against their fold's captions. */
export interface Block {
  rows: Range;
  captions: Range;
}

/** The grid blocks that hold any of `rows` (see the header), in row order. */
export function planBlocks(l: Layout, rows: Range, imageBlock: number): Block[] {
  if (!Number.isSafeInteger(imageBlock) || imageBlock < 1)
    throw new VslError(`image block: expected a positive integer, found ${imageBlock}`);
  const foldLen = l.fold5 ? l.foldImages! : l.nImages;
  const out: Block[] = [];
  for (let origin = 0; origin < l.nImages; origin += foldLen) {
    const end = origin + foldLen;
    const lo = Math.max(rows[0], origin);
    const hi = Math.min(rows[1], end);
    if (lo >= hi) continue;
    const captions: Range = l.fold5 ? [CAPS_PER_IMAGE * origin, CAPS_PER_IMAGE * end] : [0, CAPS_PER_IMAGE * l.nImages];
    for (let s = origin + Math.floor((lo - origin) / imageBlock) * imageBlock; s < hi; s += imageBlock) {
      out.push({ rows: [s, Math.min(s + imageBlock, end)], captions });
    }
  }
  return out;
}

/**
 * The image rows to encode for `blocks`: widened to whole encoding batches of `batch` images counted from 0,
 * the batches the unsharded run encodes (so each image's encoding comes from the same batch as there).
 */
export function encodeRange(blocks: readonly Block[], nImages: number, batch: number): Range {
  if (blocks.length === 0) return [0, 0];
  const lo = blocks[0].rows[0];
  const hi = blocks[blocks.length - 1].rows[1];
  return [Math.floor(lo / batch) * batch, Math.min(nImages, Math.ceil(hi / batch) * batch)];
}
