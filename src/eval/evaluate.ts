// `evalrank` for vsl: load a model, encode a split once, score it in shards, compute the metrics.
//
// - Options (data name, data path, vocabulary folder, architecture) come from the checkpoint; `dataPath`,
//   `vocabPath` and `dataName` override them. The vocabulary is `<vocabPath>/<dataName>_vocab.json`; a path
//   ending in .json is taken as the file itself. Without an override, the checkpoint's vocabulary folder, the
//   data path (where `vsl synth` writes it) and ./vocab (the reference's hard-coded folder) are tried in order.
// - Images: every image row once. vsl stores each image once (5 captions per row); the reference stores each
//   image 5 times and keeps every 5th row, which is the same. A split with one feature row per caption
//   (imDiv 1) is read at rows 0, 5, 10, ... as the reference does. dev uses its first 5000 captions (1000
//   images), as the reference's loader.
// - fold5 (COCO-1K): 5 folds of `foldImages` (default 1000) images and their 5·foldImages captions; only the
//   five diagonal blocks are scored (never the cross-fold pairs); metrics are the mean over folds of every
//   metric. The split must hold at least 5·foldImages images; only the first 5 folds are used.
// - Score matrix output: fold5 = false: (nImages, nCaptions); fold5 = true: (5, foldImages, 5·foldImages),
//   fold f's block of images [f·k, (f+1)·k) × captions [5f·k, 5(f+1)·k), k = foldImages.
import cliProgress from 'cli-progress';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { isInteractive } from '../util/terminal.js';
import { CAPS_PER_IMAGE, evaluate, evaluateFold5, type EvalResult, type ScoreMatrix } from './metrics.js';
import type { ModelSource } from './loadModel.js';
import { releaseBlocks, scoreSplit, type ScoredSplit, type ScoreSplitOptions } from './scoreSplit.js';

export { DEV_MAX_CAPTIONS, FOLDS } from './scoreSplit.js';

export interface EvaluateModelOptions extends Omit<ScoreSplitOptions, 'shard' | 'onProgress'> {
  /** Progress bar / log lines on stderr while scoring (default false). */
  progress?: boolean;
  /** Keeps the matrix (e.g. --save-sims) before the work directory's blocks are removed. */
  keep?: (sims: Float32Array, shape: number[]) => void;
}

export interface EvaluateModelOutput {
  modelPath: string;
  module: string;
  source: ModelSource;
  epoch: number;
  dataPath: string;
  dataName: string;
  split: string;
  vocabFile: string;
  /** Images and captions scored (all folds together for fold5). */
  nImages: number;
  nCaptions: number;
  fold5: boolean;
  foldImages?: number;
  /** float32 scores; shape in `simsShape` (see the header). */
  sims: Float32Array;
  simsShape: number[];
  /** The result (the mean over folds for fold5). */
  result: EvalResult;
  folds?: EvalResult[];
  workers: number;
  /** onnx, tfjs (or onnx+tfjs for merged parts of both) */
  engine: string;
  backend: string;
  seconds: { encode: number; score: number };
  pairsPerSecond: number;
}

// ------------------------------------------------------------------------------------------------ progress

interface Progress {
  update(done: number): void;
  stop(): void;
}

/** A progress bar on a TTY stderr (not under CI), else a log line every 10 s and one at the end. */
function makeProgress(label: string, total: number, enabled: boolean): Progress {
  if (!enabled || total <= 0) return { update: () => {}, stop: () => {} };
  const t0 = Date.now();
  const fancy = isInteractive(process.stderr);
  if (fancy) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${label} [{bar}] {percentage}% | {value}/{total} pairs | {rate} pairs/s | ETA {eta_formatted}`,
        etaBuffer: 50,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: '0' });
    return {
      update: (done) =>
        bar.update(done, { rate: Math.round(done / Math.max(1e-3, (Date.now() - t0) / 1000)).toString() }),
      stop: () => bar.stop(),
    };
  }
  let last = t0;
  let lastDone = 0;
  const line = (done: number) => {
    const s = (Date.now() - t0) / 1000;
    const rate = done / Math.max(1e-3, s);
    const eta = rate > 0 ? (total - done) / rate : NaN;
    log().info(
      { done, total, pairsPerSecond: Math.round(rate), etaSeconds: Number.isFinite(eta) ? Math.round(eta) : null },
      `${label}: ${((100 * done) / total).toFixed(1)}% (${done}/${total} pairs, ${Math.round(rate)} pairs/s, ETA ${Number.isFinite(eta) ? formatSeconds(eta) : '?'})`,
    );
  };
  return {
    update: (done) => {
      lastDone = done;
      const now = Date.now();
      if (now - last >= 10_000) {
        last = now;
        line(done);
      }
    },
    stop: () => line(lastDone),
  };
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

// ------------------------------------------------------------------------------------------------ metrics

/** Metrics of a score matrix: (nImg, 5·nImg), or fold blocks (folds, k, 5k) for fold5; `source` names it in errors. */
export function evaluateScores(
  sims: ScoreMatrix,
  shape: readonly number[],
  fold5: boolean,
  source?: string,
): { result: EvalResult; folds?: EvalResult[] } {
  if (fold5) {
    if (shape.length !== 3)
      throw new VslError(`fold5 scores: expected shape (folds, k, 5k), found (${shape.join(', ')})`);
    const [f, k, n] = shape as [number, number, number];
    if (n !== CAPS_PER_IMAGE * k)
      throw new VslError(`fold5 scores: expected (folds, k, 5k), found (${shape.join(', ')})`);
    const folds: EvalResult[] = [];
    for (let i = 0; i < f; i++) {
      const where = { source, imageOffset: i * k, captionOffset: i * n };
      folds.push(evaluate(sims.subarray(i * k * n, (i + 1) * k * n), k, n, where));
    }
    return { result: evaluateFold5(folds), folds };
  }
  if (shape.length !== 2) throw new VslError(`scores: expected shape (images, captions), found (${shape.join(', ')})`);
  return { result: evaluate(sims, shape[0], shape[1], { source }) };
}

// ------------------------------------------------------------------------------------------------ evaluate

/** Thrown when a stop request ended the scoring early: the finished blocks are kept in `workDir`. */
export class EvalStopped extends VslError {
  constructor(
    readonly scored: ScoredSplit,
    message: string,
    exitCode: number,
  ) {
    super(message, exitCode);
  }
}

/** The metrics of a complete matrix, with what the report prints about it. */
export function outputOf(s: ScoredSplit, extra: { pairs: number }): EvaluateModelOutput {
  const { result, folds } = evaluateScores(
    s.scores,
    s.shape,
    s.layout.fold5,
    `${s.modelPath} on ${s.dataName}/${s.split}`,
  );
  return {
    modelPath: s.modelPath,
    module: s.module,
    source: s.source,
    epoch: s.epoch,
    dataPath: s.dataPath,
    dataName: s.dataName,
    split: s.split,
    vocabFile: s.vocabFile,
    nImages: s.layout.nImages,
    nCaptions: s.nCaptions,
    fold5: s.layout.fold5,
    ...(s.layout.fold5 ? { foldImages: s.layout.foldImages } : {}),
    sims: s.scores,
    simsShape: s.shape,
    result,
    ...(folds ? { folds } : {}),
    workers: s.workers,
    engine: s.engine,
    backend: s.backend,
    seconds: s.seconds,
    pairsPerSecond: extra.pairs / Math.max(1e-9, s.seconds.score),
  };
}

/**
 * Load, encode, score and evaluate one model on one split (see the header). Finished blocks are kept in the
 * work directory while it runs and removed at the end; a stop request (shouldStop) throws EvalStopped.
 */
export async function evaluateModel(o: EvaluateModelOptions): Promise<EvaluateModelOutput> {
  let bar: Progress | undefined;
  const s = await scoreSplit({
    ...o,
    onProgress: (done, total) => {
      bar ??= makeProgress('scoring', total, o.progress ?? false);
      bar.update(done);
    },
  }).finally(() => bar?.stop());
  if (s.stopped) {
    throw new EvalStopped(
      s,
      `stopped: ${s.blocks.reused + s.blocks.scored} of ${s.blocks.total} blocks are kept in ${s.workDir}`,
      130,
    );
  }
  const out = outputOf(s, { pairs: s.pairsScored });
  o.keep?.(out.sims, out.simsShape);
  releaseBlocks(s);
  return out;
}

/** Element-wise mean of equally shaped score matrices, in float64 (the SGRAF ensemble). */
export function averageScores(
  mats: readonly ScoreMatrix[],
  shapes: readonly (readonly number[])[],
  names: readonly string[],
): Float64Array {
  if (mats.length === 0) throw new VslError('ensemble: expected at least one score matrix');
  const s0 = shapes[0].join(',');
  shapes.forEach((s, i) => {
    if (s.join(',') !== s0)
      throw new VslError(
        `ensemble: score matrices must have the same shape; ${names[0]} is (${shapes[0].join(', ')}), ${names[i]} is (${s.join(', ')})`,
      );
    if (mats[i].length !== mats[0].length)
      throw new VslError(`ensemble: ${names[i]}: expected ${mats[0].length} scores, found ${mats[i].length}`);
  });
  const out = new Float64Array(mats[0].length);
  for (const m of mats) for (let j = 0; j < out.length; j++) out[j] += m[j];
  for (let j = 0; j < out.length; j++) out[j] /= mats.length;
  return out;
}
