// Load a model, encode a split and score rows of its matrix, resumably (the first half of the reference's
// `evalrank`; evaluate.ts adds the metrics). See evaluate.ts for the data conventions (dev's 5000 captions, fold5,
// splits stored one row per caption) and shards.ts for the rows of a shard and the block grid.
//
// Only the images of the requested rows are encoded (widened to the encoding batches of the unsharded run);
// every caption the rows meet is encoded (all of them: an encoding batch mixes captions of every fold).
// Finished blocks go to a work directory (blockStore.ts): `workDir`, else a cache folder named after what is
// evaluated, so the same command run again finds them; it is removed once the rows are complete.
// Encoding and scoring run on the engine (runtime/engine.ts: onnx where it loads, else tfjs), which is part of
// what the work directory's blocks are scores of.
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { sha256File } from '../util/atomicFile.js';
import { vslVersion } from '../util/version.js';
import { selectBackend, type BackendChoice } from '../ops/backend.js';
import { logEngine, resolveEngine, type EngineChoice } from '../runtime/engine.js';
import { openEvalEngine } from '../runtime/evalEngine.js';
import { openSplit, type PrecompSplit } from '../data/precomp.js';
import { encodeCaption, loadVocab, type Vocab } from '../data/vocab.js';
import type { EncodedCaptions, EncodedImages } from '../runtime/encode.js';
import { CAPS_PER_IMAGE } from './metrics.js';
import { buildModel, readModelFile, type LoadedModel, type ModelFile, type ModelSource } from './loadModel.js';
import { DEFAULT_CAPTION_BLOCK, DEFAULT_IMAGE_BLOCK } from '../runtime/scoreMatrix.js';
import { BlockStore, type Identity } from './blockStore.js';
import { scoreBlocks } from './scoreBlocks.js';
import {
  encodeRange,
  matrixShape,
  planBlocks,
  rowLength,
  shardRows,
  type Layout,
  type Range,
  type Shard,
} from './shards.js';
import { resolveVocabFile } from './vocabFile.js';

export const FOLDS = 5;
export const DEV_MAX_CAPTIONS = 5000;
/** Images per encoding batch (the batches are counted from image 0 in every run). */
export const IMAGE_ENCODE_BATCH = 100;

export interface ScoreSplitOptions {
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
  /** Scoring engine (default auto: onnx where it loads, else tfjs; engine.ts). */
  engine?: EngineChoice;
  /** Backend choice (default auto; a backend already selected in this process is kept). */
  backend?: BackendChoice;
  imageBlock?: number;
  captionBlock?: number;
  /** Score only this shard's rows (default: every row). */
  shard?: Shard;
  /** Where finished blocks are kept: a folder, null for nowhere, undefined for the cache folder. */
  workDir?: string | null;
  /** Asked before each new block; true = finish the blocks in flight and return with `stopped`. */
  shouldStop?: () => boolean;
  onProgress?: (pairsDone: number, pairsTotal: number) => void;
}

export interface ScoredSplit {
  modelPath: string;
  modelSha256: string;
  module: string;
  source: ModelSource;
  epoch: number;
  dataPath: string;
  dataName: string;
  split: string;
  vocabFile: string;
  captionsSha256: string;
  layout: Layout;
  nCaptions: number;
  /** The rows scored, and their scores: (rows, rowLength), row-major. */
  rows: Range;
  rowLength: number;
  scores: Float32Array;
  /** The whole matrix's shape (as --save-sims writes it). */
  shape: number[];
  imageBlock: number;
  captionBlock: number;
  workers: number;
  /** onnx or tfjs */
  engine: string;
  backend: string;
  seconds: { encode: number; score: number };
  /** Pairs this run scored (blocks taken from the work directory not counted). */
  pairsScored: number;
  blocks: { total: number; reused: number; scored: number };
  /** Set when shouldStop ended the run early: `scores` is incomplete, the finished blocks are in workDir. */
  stopped: boolean;
  workDir: string | null;
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

/** Rows of images [s, e) from image `offset` on: image i is row i (one row per image) or 5i (one row per caption, as the reference stores them). */
export function imageRows(split: PrecompSplit, offset = 0): (s: number, e: number) => Float32Array {
  return split.imDiv === CAPS_PER_IMAGE
    ? (s, e) => split.images.readRows(offset + s, offset + e)
    : (s, e) =>
        split.images.readRowsIndexed(Int32Array.from({ length: e - s }, (_, k) => (offset + s + k) * CAPS_PER_IMAGE));
}

/** A model file and the vocabulary of its data (the overrides first, then the checkpoint's options). */
export async function loadModelAndVocab(o: {
  modelPath: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
}): Promise<{
  model: LoadedModel;
  file: ModelFile;
  dataName: string;
  dataPath: string;
  vocabFile: string;
  vocab: Vocab;
}> {
  const file = await readModelFile(o.modelPath);
  const dataName = o.dataName ?? file.options.data.dataName;
  const dataPath = o.dataPath ?? file.options.data.dataPath;
  const vocabFile = resolveVocabFile(dataName, o.vocabPath, file.options.data.vocabPath, dataPath);
  const vocab = loadVocab(vocabFile);
  return { model: buildModel(file, vocab.size), file, dataName, dataPath, vocabFile, vocab };
}

/** The evaluation's layout: every image, or 5 folds of foldImages (the split must hold them). */
function layoutOf(split: PrecompSplit, name: string, dataName: string, fold5: boolean, foldImages: number): Layout {
  const nCapAll = split.nCaptions;
  if (nCapAll % CAPS_PER_IMAGE !== 0) {
    throw new VslError(
      `${split.paths.captions}: expected ${CAPS_PER_IMAGE} captions per image, found ${nCapAll} captions (not a multiple of ${CAPS_PER_IMAGE})`,
    );
  }
  const nImgAll = nCapAll / CAPS_PER_IMAGE;
  if (!fold5) return { nImages: nImgAll, fold5 };
  if (!Number.isSafeInteger(foldImages) || foldImages < 1)
    throw new VslError(`foldImages: expected a positive integer, found ${foldImages}`);
  if (nImgAll < FOLDS * foldImages) {
    throw new VslError(
      `--fold5: split '${name}' of ${dataName} has ${nImgAll} images; 5 folds need ${FOLDS * foldImages} (${foldImages} per fold; COCO-1K uses testall)`,
    );
  }
  if (nImgAll > FOLDS * foldImages) log().warn(`--fold5: using the first ${FOLDS * foldImages} of ${nImgAll} images`);
  return { nImages: FOLDS * foldImages, fold5, foldImages };
}

/** The cache folder of an evaluation without an output file: ~/.cache/vsl/eval/<hash of what it scores>. */
function defaultWorkDir(identity: Identity, rows: Range): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const key = crypto.createHash('sha256').update(JSON.stringify({ identity, rows })).digest('hex').slice(0, 20);
  return path.join(base, 'vsl', 'eval', key);
}

export async function scoreSplit(o: ScoreSplitOptions): Promise<ScoredSplit> {
  const backend = await selectBackend(o.backend ?? 'auto');
  const { model, dataName, dataPath, vocabFile, vocab } = await loadModelAndVocab(o);
  const c = model.config;
  const split = openEvalSplit(dataPath, dataName, o.split, c.imgDim, o.modelPath);
  if (o.workers !== undefined && (!Number.isSafeInteger(o.workers) || o.workers < 1))
    throw new VslError(`--workers: expected an integer >= 1, found ${o.workers}`);
  const engine = await resolveEngine(o.engine ?? 'auto', c.module);
  const imageBlock = o.imageBlock ?? DEFAULT_IMAGE_BLOCK;
  const captionBlock = o.captionBlock ?? DEFAULT_CAPTION_BLOCK;
  const t0 = performance.now();
  let t1: number;
  try {
    const layout = layoutOf(split, o.split, dataName, o.fold5, o.foldImages ?? 1000);
    const nImg = layout.nImages;
    const nCap = nImg * CAPS_PER_IMAGE;
    const rows = o.shard ? shardRows(nImg, o.shard) : ([0, nImg] as Range);
    const L = rowLength(layout);
    const captions = split.captions.slice(0, nCap);
    const modelSha256 = sha256File(o.modelPath);
    const captionsSha256 = crypto.createHash('sha256').update(captions.join('\n')).digest('hex');
    const identity: Identity = {
      'model.sha256': modelSha256,
      'data.dataName': dataName,
      'data.split': o.split,
      'data.captionsSha256': captionsSha256,
      'protocol.fold5': layout.fold5,
      'protocol.foldImages': layout.foldImages ?? null,
      'protocol.imageBlock': imageBlock,
      'protocol.captionBlock': captionBlock,
      'matrix.rows': nImg,
      'matrix.rowLength': L,
      engine: engine.name,
      backend: engine.name === 'onnx' ? `onnxruntime-node ${engine.version}` : backend.name,
      vsl: vslVersion(),
    };
    const workDir = o.workDir === null ? null : (o.workDir ?? defaultWorkDir(identity, rows));
    const store = workDir === null ? undefined : BlockStore.open(workDir, identity, L);
    const blocks = planBlocks(layout, rows, imageBlock);
    const [e0, e1] = encodeRange(blocks, nImg, IMAGE_ENCODE_BATCH);
    const readRows = imageRows(split, e0);

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
        rows,
        vocab: vocabFile,
        workDir,
      },
      `evaluating ${c.module} (${model.source}, epoch ${model.epoch}) on ${dataName}/${o.split}: ${nImg} images, ${nCap} captions` +
        (rows[0] !== 0 || rows[1] !== nImg ? `; rows [${rows[0]}, ${rows[1]})` : '') +
        (workDir ? `; finished blocks kept in ${workDir}` : ''),
    );
    const eng = await openEvalEngine(engine, model.reg, c, backend.name, o.modelPath);
    let img: EncodedImages | undefined;
    let cap: EncodedCaptions | undefined;
    let scorer;
    try {
      const pairs = blocks.reduce((n, b) => n + (b.rows[1] - b.rows[0]) * (b.captions[1] - b.captions[0]), 0);
      const workers = o.workers ?? eng.defaultWorkers(pairs);
      logEngine(engine, eng.threadsText(workers), backend.name);
      img = await eng.encodeImages(e1 - e0, readRows, IMAGE_ENCODE_BATCH);
      cap = await eng.encodeCaptions(
        captions.map((t) => encodeCaption(vocab, t)),
        128,
      );
      t1 = performance.now();
      log().info(`encoded ${e1 - e0} images and ${nCap} captions in ${((t1 - t0) / 1000).toFixed(1)} s`);
      scorer = await eng.scorer({ workers, img, cap, imageBlock, captionBlock });
    } finally {
      await eng.close();
    }
    // A worker pool holds shared-memory copies: drop ours so that only one copy stays alive.
    img = undefined;
    cap = undefined;
    const cpu0 = process.cpuUsage(); // the whole process: the main thread and every score worker
    let run;
    try {
      run = await scoreBlocks({
        scorer,
        blocks,
        rows,
        rowLength: L,
        imageOffset: e0,
        store,
        shouldStop: o.shouldStop,
        onProgress: o.onProgress,
      });
    } finally {
      await scorer.close();
    }
    const t2 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    if (!run.stopped) {
      log().info(
        {
          pairs: run.pairsScored,
          seconds: (t2 - t1) / 1000,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          reused: run.reused,
          scored: run.scored,
        },
        `scored ${run.scored} blocks (${run.pairsScored} pairs) in ${((t2 - t1) / 1000).toFixed(1)} s ` +
          `(${Math.round(run.pairsScored / Math.max(1e-9, (t2 - t1) / 1000))} pairs/s, ${scorer.workers} worker(s)); ${run.reused} blocks reused`,
      );
    }
    return {
      modelPath: o.modelPath,
      modelSha256,
      module: c.module,
      source: model.source,
      epoch: model.epoch,
      dataPath,
      dataName,
      split: o.split,
      vocabFile,
      captionsSha256,
      layout,
      nCaptions: nCap,
      rows,
      rowLength: L,
      scores: run.scores,
      shape: matrixShape(layout),
      imageBlock,
      captionBlock,
      workers: scorer.workers,
      engine: engine.name,
      backend: backend.name,
      seconds: { encode: (t1 - t0) / 1000, score: (t2 - t1) / 1000 },
      pairsScored: run.pairsScored,
      blocks: { total: run.total, reused: run.reused, scored: run.scored },
      stopped: run.stopped,
      workDir,
      // the caller removes the blocks once it has kept the rows (release())
    };
  } finally {
    split.close();
    model.reg.dispose();
  }
}

/** Remove the work directory's blocks of `s` (call once its rows are kept elsewhere, or reported). */
export function releaseBlocks(s: ScoredSplit): void {
  if (!s.workDir || s.stopped) return;
  const store = BlockStore.reopen(s.workDir, s.rowLength);
  store.removeBlocks(planBlocks(s.layout, s.rows, s.imageBlock));
}
