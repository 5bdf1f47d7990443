// Fixed figures of the benchmark: the per-pair and per-item FLOP counts of SPEC §12 (default dims, 36 regions,
// 12-token captions) and the case catalogue with what --quick runs.

export const MFLOP = 1e6;

/** Forward FLOPs per image-caption pair (SPEC §12: matmul FLOPs of the reference modules). */
export const PAIR_FLOPS = { SGR: 24.4 * MFLOP, SAF: 8.6 * MFLOP } as const;

/** Forward FLOPs per image: the fc 2048->1024 on 36 regions (2·36·2048·1024) plus VisualSA (SPEC §12: 77.7 M). */
export const IMAGE_FLOPS = 2 * 36 * 2048 * 1024 + 77.7 * MFLOP;

/**
 * Forward FLOPs per caption of 12 tokens: the bi-GRU (2 directions × 12 steps × 2·3D·(300 + D), input and hidden
 * products) plus TextSA (SPEC §12: 27.3 M). The embedding lookup is a gather (no FLOPs).
 */
export const CAPTION_FLOPS = 2 * 12 * 2 * 3 * 1024 * (300 + 1024) + 27.3 * MFLOP;

/** Training step ≈ 3 × forward (backward ≈ 2 × forward): B² pairs plus B images and B captions. */
export function trainStepFlops(module: 'SGR' | 'SAF', B: number): number {
  return 3 * (B * B * PAIR_FLOPS[module] + B * (IMAGE_FLOPS + CAPTION_FLOPS));
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
