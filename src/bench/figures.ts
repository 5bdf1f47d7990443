// Fixed figures of the benchmark: the per-item FLOP counts of the reference's matrix products (default dims, 36
// regions, 12-token captions; each module's per-pair count is in its record), the caption lengths the cases draw,
// and the case catalogue with what --quick runs.
import { moduleOf } from '../model/modules.js';

const MFLOP = 1e6;

/** Forward FLOPs per image: the fc 2048->1024 on 36 regions (2·36·2048·1024) plus VisualSA (77.7 M). */
export const IMAGE_FLOPS = 2 * 36 * 2048 * 1024 + 77.7 * MFLOP;

/**
 * Forward FLOPs per caption of 12 tokens: the bi-GRU (2 directions × 12 steps × 2·3D·(300 + D), input and hidden
 * products) plus TextSA (27.3 M). The embedding lookup is a gather (no FLOPs).
 */
const CAPTION_FLOPS = 2 * 12 * 2 * 3 * 1024 * (300 + 1024) + 27.3 * MFLOP;

/**
 * How many captions of each token count (<start> and <end> included) the benchmark draws from: the counts of the
 * reference workbench's synthetic captions (train, dev and test of its make_data.py: 8 to 18 tokens, mean 13.5),
 * so that vsl and the reference score captions of the same lengths in sidebyside.sh. Real captions are similar
 * (Flickr30K ~14 tokens on average, COCO ~12.5).
 */
export const CAPTION_LENGTH_COUNTS: Record<number, number> = {
  8: 11,
  9: 56,
  10: 106,
  11: 132,
  12: 181,
  13: 246,
  14: 302,
  15: 252,
  16: 233,
  17: 99,
  18: 22,
};

/** The mean token count of CAPTION_LENGTH_COUNTS; the per-pair and per-caption FLOPs scale with it. */
export const MEAN_CAPTION_LENGTH = (() => {
  const e = Object.entries(CAPTION_LENGTH_COUNTS);
  return e.reduce((a, [L, n]) => a + Number(L) * n, 0) / e.reduce((a, [, n]) => a + n, 0);
})();

/** Forward FLOPs of one pair / one caption at the benchmark's caption lengths (the counts above are at 12 tokens). */
export const pairFlops = (module: string) => (moduleOf({ module }).pairMflop * MFLOP * MEAN_CAPTION_LENGTH) / 12;
export const captionFlops = () => (CAPTION_FLOPS * MEAN_CAPTION_LENGTH) / 12;

/** Training step ≈ 3 × forward (backward ≈ 2 × forward): B² pairs plus B images and B captions. */
export function trainStepFlops(module: string, B: number): number {
  return 3 * (B * B * pairFlops(module) + B * (IMAGE_FLOPS + captionFlops()));
}

export const ALL_CASES = [
  'matmul',
  'score-sgr-100x500',
  'score-saf-100x500',
  'score-sgr-100x500-w1',
  'score-saf-100x500-w1',
  'score-sgr-1000x5000',
  'score-saf-1000x5000',
  'train-sgr-b32',
  'train-saf-b32',
  'train-sgr-b128',
  'train-saf-b128',
  'encode-images-1000',
  'encode-captions-5000',
] as const;
export type CaseName = (typeof ALL_CASES)[number];

/** --quick: the roofline, both 100 × 500 blocks with the worker pool, one SAF step at B = 32 (well under 60 s). */
export const QUICK_CASES: CaseName[] = ['matmul', 'score-sgr-100x500', 'score-saf-100x500', 'train-saf-b32'];
