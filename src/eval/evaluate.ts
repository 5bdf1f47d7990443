// `evalrank` (SPEC §8.4) for vsl: load a model, encode a split once, score it in shards, compute the metrics.
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
import fs from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { isInteractive } from '../util/terminal.js';
import { selectBackend, type BackendChoice } from '../backend.js';
import { openSplit, type PrecompSplit } from '../data/precomp.js';
import { loadVocab, type Vocab } from '../data/vocab.js';
import { encodeCaption } from '../data/tokenizer.js';
import { Weights } from '../model/weights.js';
import { encodeCaptionTokens, encodeImages, type EncodedCaptions, type EncodedImages } from './encodeSplit.js';
import { CAPS_PER_IMAGE, evaluate, evaluateFold5, type EvalResult, type ScoreMatrix } from './metrics.js';
import { buildModel, readModelFile, type LoadedModel, type ModelSource } from './loadModel.js';
import { createScorer, defaultWorkers } from './parallel.js';

export const FOLDS = 5;
export const DEV_MAX_CAPTIONS = 5000;

export interface EvaluateModelOptions {
  modelPath: string;
  /** Overrides the checkpoint's data path. */
  dataPath?: string;
  /** Folder holding `<dataName>_vocab.json` (or the .json file itself); overrides the checkpoint's. */
  vocabPath?: string;
  /** Overrides the checkpoint's data name. */
  dataName?: string;
  split: string;
  fold5: boolean;
  /** Images per fold for fold5 (1000 for COCO-1K). */
  foldImages?: number;
  /** Score workers (default: defaultWorkers(backend)); 1 = in-process. */
  workers?: number;
  /** Backend choice (default auto; a backend already selected in this process is kept). */
  backend?: BackendChoice;
  imageBlock?: number;
  captionBlock?: number;
  /** Progress bar / log lines on stderr while scoring (default false). */
  progress?: boolean;
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
  backend: string;
  seconds: { encode: number; score: number };
  pairsPerSecond: number;
}

// ------------------------------------------------------------------------------------------------ progress

export interface Progress {
  update(done: number): void;
  stop(): void;
}

/** A progress bar on a TTY stderr (not under CI), else a log line every 10 s and one at the end. */
export function makeProgress(label: string, total: number, enabled: boolean): Progress {
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

// ------------------------------------------------------------------------------------------------ paths

/** The vocabulary file: an explicit folder/file, else the first existing of checkpoint folder, data path, ./vocab. */
export function resolveVocabFile(
  dataName: string,
  override: string | undefined,
  fromCheckpoint: string | undefined,
  dataPath: string,
): string {
  const inFolder = (dir: string) => path.join(dir, `${dataName}_vocab.json`);
  if (override !== undefined) {
    const file =
      override.endsWith('.json') && !(fs.existsSync(override) && fs.statSync(override).isDirectory())
        ? override
        : inFolder(override);
    if (!fs.existsSync(file))
      throw new VslError(`${file}: vocabulary file not found (--vocab-path ${override}, data name '${dataName}')`);
    return file;
  }
  const tried: string[] = [];
  for (const dir of [fromCheckpoint, dataPath, './vocab']) {
    if (!dir) continue;
    const f = inFolder(dir);
    if (tried.includes(f)) continue;
    tried.push(f);
    if (fs.existsSync(f)) return f;
  }
  throw new VslError(
    `vocabulary for data name '${dataName}' not found; tried ${tried.join(', ')} (pass --vocab-path DIR)`,
  );
}

// ------------------------------------------------------------------------------------------------ metrics

/** Metrics of a score matrix: (nImg, 5·nImg), or fold blocks (folds, k, 5k) for fold5. */
export function evaluateScores(
  sims: ScoreMatrix,
  shape: readonly number[],
  fold5: boolean,
): { result: EvalResult; folds?: EvalResult[] } {
  if (fold5) {
    if (shape.length !== 3)
      throw new VslError(`fold5 scores: expected shape (folds, k, 5k), found (${shape.join(', ')})`);
    const [f, k, n] = shape as [number, number, number];
    if (n !== CAPS_PER_IMAGE * k)
      throw new VslError(`fold5 scores: expected (folds, k, 5k), found (${shape.join(', ')})`);
    const folds: EvalResult[] = [];
    for (let i = 0; i < f; i++) folds.push(evaluate(sims.subarray(i * k * n, (i + 1) * k * n), k, n));
    return { result: evaluateFold5(folds), folds };
  }
  if (shape.length !== 2) throw new VslError(`scores: expected shape (images, captions), found (${shape.join(', ')})`);
  return { result: evaluate(sims, shape[0]!, shape[1]!) };
}

// ------------------------------------------------------------------------------------------------ evaluate

/** Rows of images [s, e): image i is row i (one row per image) or 5i (one per caption, as the reference). */
export function imageRows(split: PrecompSplit): (s: number, e: number) => Float32Array {
  return split.imDiv === CAPS_PER_IMAGE
    ? (s, e) => split.images.readRows(s, e)
    : (s, e) => split.images.readRowsIndexed(Int32Array.from({ length: e - s }, (_, k) => (s + k) * CAPS_PER_IMAGE));
}

export function openEvalSplit(
  dataPath: string,
  dataName: string,
  split: string,
  imgDim: number,
  modelPath: string,
): PrecompSplit {
  try {
    return openSplit(dataPath, dataName, split, {
      imgDim,
      maxCaptions: split === 'dev' ? DEV_MAX_CAPTIONS : undefined,
    });
  } catch (e) {
    if (e instanceof VslError && e.message.includes('feature dim')) {
      throw new VslError(`${e.message}; the model ${modelPath} takes img_dim ${imgDim} features`);
    }
    throw e;
  }
}

/** A model file and the vocabulary of its data (the overrides first, then the checkpoint's options). */
export async function loadModelAndVocab(o: {
  modelPath: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
}): Promise<{ model: LoadedModel; dataName: string; dataPath: string; vocabFile: string; vocab: Vocab }> {
  const file = await readModelFile(o.modelPath);
  const dataName = o.dataName ?? file.options.data.dataName;
  const dataPath = o.dataPath ?? file.options.data.dataPath;
  const vocabFile = resolveVocabFile(dataName, o.vocabPath, file.options.data.vocabPath, dataPath);
  const vocab = loadVocab(vocabFile);
  return { model: buildModel(file, vocab.size), dataName, dataPath, vocabFile, vocab };
}

/** Load, encode, score and evaluate one model on one split (see the header). */
export async function evaluateModel(o: EvaluateModelOptions): Promise<EvaluateModelOutput> {
  const backend = await selectBackend(o.backend ?? 'auto');
  const { model, dataName, dataPath, vocabFile, vocab } = await loadModelAndVocab(o);
  const c = model.config;
  const split = openEvalSplit(dataPath, dataName, o.split, c.imgDim, o.modelPath);
  const workers = o.workers ?? defaultWorkers(backend.name);
  if (!Number.isSafeInteger(workers) || workers < 1)
    throw new VslError(`--workers: expected an integer >= 1, found ${workers}`);
  const t0 = performance.now();
  try {
    const nCapAll = split.nCaptions;
    if (nCapAll % CAPS_PER_IMAGE !== 0) {
      throw new VslError(
        `${split.paths.captions}: expected ${CAPS_PER_IMAGE} captions per image, found ${nCapAll} captions (not a multiple of ${CAPS_PER_IMAGE})`,
      );
    }
    const nImgAll = nCapAll / CAPS_PER_IMAGE;
    const foldImages = o.foldImages ?? 1000;
    let nImg = nImgAll;
    if (o.fold5) {
      if (!Number.isSafeInteger(foldImages) || foldImages < 1)
        throw new VslError(`foldImages: expected a positive integer, found ${foldImages}`);
      if (nImgAll < FOLDS * foldImages) {
        throw new VslError(
          `--fold5: split '${o.split}' of ${dataName} has ${nImgAll} images; 5 folds need ${FOLDS * foldImages} (${foldImages} per fold; COCO-1K uses testall)`,
        );
      }
      if (nImgAll > FOLDS * foldImages)
        log().warn(`--fold5: using the first ${FOLDS * foldImages} of ${nImgAll} images`);
      nImg = FOLDS * foldImages;
    }
    const nCap = nImg * CAPS_PER_IMAGE;
    const readRows = imageRows(split);

    log().info(
      {
        model: o.modelPath,
        module: c.module,
        source: model.source,
        epoch: model.epoch,
        data: path.join(dataPath, dataName),
        split: o.split,
        images: nImg,
        captions: nCap,
        vocab: vocabFile,
      },
      `evaluating ${c.module} (${model.source}, epoch ${model.epoch}) on ${dataName}/${o.split}: ${nImg} images, ${nCap} captions`,
    );
    const w = Weights.of(model.reg, true);
    let img: EncodedImages | undefined;
    let cap: EncodedCaptions | undefined;
    try {
      img = encodeImages(w, c, nImg, readRows, 100);
      const tokens = split.captions.slice(0, nCap).map((t) => encodeCaption(vocab, t));
      cap = encodeCaptionTokens(w, c, tokens, 128);
    } finally {
      w.dispose();
    }
    const t1 = performance.now();
    log().info(`encoded ${nImg} images and ${nCap} captions in ${((t1 - t0) / 1000).toFixed(1)} s`);

    const scorer = await createScorer({
      workers,
      backend: backend.name,
      reg: model.reg,
      config: c,
      img,
      cap,
      imageBlock: o.imageBlock,
      captionBlock: o.captionBlock,
    });
    // A worker pool holds shared-memory copies: drop ours so that only one copy stays alive.
    img = undefined;
    cap = undefined;
    let sims: Float32Array;
    let simsShape: number[];
    let pairs: number;
    try {
      if (o.fold5) {
        const k = foldImages;
        const blockLen = k * CAPS_PER_IMAGE * k;
        sims = new Float32Array(FOLDS * blockLen);
        simsShape = [FOLDS, k, CAPS_PER_IMAGE * k];
        pairs = FOLDS * blockLen;
        const bar = makeProgress(
          `scoring ${FOLDS} folds (${scorer.workers} worker${scorer.workers > 1 ? 's' : ''})`,
          pairs,
          o.progress ?? false,
        );
        try {
          for (let f = 0; f < FOLDS; f++) {
            const block = await scorer.score(
              [f * k, (f + 1) * k],
              [CAPS_PER_IMAGE * f * k, CAPS_PER_IMAGE * (f + 1) * k],
              (d) => bar.update(f * blockLen + d),
            );
            sims.set(block, f * blockLen);
          }
        } finally {
          bar.stop();
        }
      } else {
        simsShape = [nImg, nCap];
        pairs = nImg * nCap;
        const bar = makeProgress(
          `scoring (${scorer.workers} worker${scorer.workers > 1 ? 's' : ''})`,
          pairs,
          o.progress ?? false,
        );
        try {
          sims = await scorer.score([0, nImg], [0, nCap], (d) => bar.update(d));
        } finally {
          bar.stop();
        }
      }
    } finally {
      await scorer.close();
    }
    const t2 = performance.now();
    const { result, folds } = evaluateScores(sims, simsShape, o.fold5);
    log().info(
      `scored ${pairs} pairs in ${((t2 - t1) / 1000).toFixed(1)} s (${Math.round(pairs / ((t2 - t1) / 1000))} pairs/s, ${scorer.workers} worker(s))`,
    );
    return {
      modelPath: o.modelPath,
      module: c.module,
      source: model.source,
      epoch: model.epoch,
      dataPath,
      dataName,
      split: o.split,
      vocabFile,
      nImages: nImg,
      nCaptions: nCap,
      fold5: o.fold5,
      ...(o.fold5 ? { foldImages } : {}),
      sims,
      simsShape,
      result,
      ...(folds ? { folds } : {}),
      workers: scorer.workers,
      backend: backend.name,
      seconds: { encode: (t1 - t0) / 1000, score: (t2 - t1) / 1000 },
      pairsPerSecond: pairs / Math.max(1e-9, (t2 - t1) / 1000),
    };
  } finally {
    split.close();
    model.reg.dispose();
  }
}

/** Element-wise mean of equally shaped score matrices, in float64 (the SGRAF ensemble, SPEC §8.5). */
export function averageScores(
  mats: readonly ScoreMatrix[],
  shapes: readonly (readonly number[])[],
  names: readonly string[],
): Float64Array {
  if (mats.length === 0) throw new VslError('ensemble: expected at least one score matrix');
  const s0 = shapes[0]!.join(',');
  shapes.forEach((s, i) => {
    if (s.join(',') !== s0)
      throw new VslError(
        `ensemble: score matrices must have the same shape; ${names[0]} is (${shapes[0]!.join(', ')}), ${names[i]} is (${s.join(', ')})`,
      );
    if (mats[i]!.length !== mats[0]!.length)
      throw new VslError(`ensemble: ${names[i]}: expected ${mats[0]!.length} scores, found ${mats[i]!.length}`);
  });
  const out = new Float64Array(mats[0]!.length);
  for (const m of mats) for (let j = 0; j < out.length; j++) out[j] += m[j]!;
  for (let j = 0; j < out.length; j++) out[j] /= mats.length;
  return out;
}
