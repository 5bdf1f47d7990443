// Validation: encode the dev split (its first maxCaptions captions), score every image with every
// caption, R@1/5/10 both ways and rsum. The scores are computed on `threads` threads: the main thread takes the
// first image blocks and N-1 score workers (runtime/scorePool.ts) the rest, side by side; the main thread's heap
// has grown for the training step already, so only the workers' heaps are new. The workers live for one
// validation (the weights change between two). On the onnx engine (--val-engine) the weights as they are now are
// exported to ONNX Runtime in memory (no file) at each validation, and encoding and scoring run there.
import crypto from 'node:crypto';
import os from 'node:os';
import type { ModelConfig } from '../model/config.js';
import type { ParamRegistry } from '../model/params.js';
import { Weights } from '../model/weights.js';
import { moduleOf } from '../model/modules.js';
import { GiB } from '../ops/memoryGuard.js';
import { ScorePool, shardRanges } from '../runtime/scorePool.js';
import { encodeCaptionTokens, encodeImages, type EncodedCaptions, type EncodedImages } from '../runtime/encode.js';
import { DEFAULT_CAPTION_BLOCK, DEFAULT_IMAGE_BLOCK, scoreMatrix } from '../runtime/scoreMatrix.js';
import type { EngineInfo } from '../runtime/engine.js';
import { openEvalEngine } from '../runtime/evalEngine.js';
import { combine, evaluate, type EvalResult, type RecallMetrics } from '../eval/metrics.js';
import type { PrecompSplit } from '../data/precomp.js';

/** The process's memory bound (README: 4 GB holds at batch 32; the training step's heaps come first). */
const MEMORY_BOUND_BYTES = 4 * GiB;
/** Below this many pairs a validation is over before score workers would have started. */
const MIN_PAIRS_FOR_WORKERS = 1_000_000;

/**
 * Heap of one score worker: the module's heap at embed size 1024 (scoreWorkerGiB; docs/performance.md, Evaluation
 * memory), taken as proportional to the embedding size, plus ~0.1 GiB of runtime per thread.
 */
function scoreWorkerBytes(c: ModelConfig): number {
  return (moduleOf(c).scoreWorkerGiB * (c.embedSize / 1024) + 0.1) * GiB;
}

/**
 * Default validation threads: what fits beside the memory in use (the resident set measured now, i.e. the
 * main and training heaps as the chosen batch grew them) under MEMORY_BOUND_BYTES and the free memory, one
 * score worker heap each, up to the cores; 1 on the native backends (they use every core) and for small splits.
 */
export function defaultValThreads(o: {
  backend: string;
  config: ModelConfig;
  pairs: number;
  rssBytes: number;
  freeBytes: number;
  cores: number;
}): number {
  if (o.backend === 'tensorflow' || o.backend === 'tensorflow-gpu') return 1;
  if (o.pairs < MIN_PAIRS_FOR_WORKERS) return 1;
  const room = Math.min(MEMORY_BOUND_BYTES - o.rssBytes, o.freeBytes - 0.5 * GiB);
  const workers = Math.max(0, Math.floor(room / scoreWorkerBytes(o.config)));
  return Math.max(1, Math.min(o.cores, 1 + workers));
}

export function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export async function validate(
  reg: ParamRegistry,
  c: ModelConfig,
  dev: PrecompSplit,
  tokens: Int32Array[],
  o: { threads: number; backend: string; engine?: EngineInfo } = { threads: 1, backend: 'cpu' },
): Promise<EvalResult> {
  if (o.engine?.name === 'onnx') return validateOnOnnx(reg, c, dev, tokens, { ...o, engine: o.engine });
  const w = Weights.of(reg);
  try {
    const img = encodeImages(w, c, dev.nImages, (s, e) => dev.images.readRows(s, e));
    const cap = encodeCaptionTokens(w, c, tokens);
    return evaluate(await scoreOnThreads(reg, w, c, img, cap, o), dev.nImages, dev.nCaptions);
  } finally {
    w.dispose();
  }
}

/** The weights as they are now, exported to ONNX Runtime in memory: encode and score there. */
async function validateOnOnnx(
  reg: ParamRegistry,
  c: ModelConfig,
  dev: PrecompSplit,
  tokens: Int32Array[],
  o: { threads: number; backend: string; engine: EngineInfo },
): Promise<EvalResult> {
  const eng = await openEvalEngine(o.engine, reg, c, o.backend, 'the weights being trained');
  let scorer;
  try {
    const img = await eng.encodeImages(dev.nImages, (s, e) => dev.images.readRows(s, e), 100);
    const cap = await eng.encodeCaptions(tokens);
    scorer = await eng.scorer({ workers: o.threads, img, cap });
  } finally {
    await eng.close();
  }
  try {
    return evaluate(await scorer.score([0, dev.nImages], [0, tokens.length]), dev.nImages, dev.nCaptions);
  } finally {
    await scorer.close();
  }
}

/** The (images, captions) matrix on `threads` threads: the main thread's share first, the workers' after it. */
async function scoreOnThreads(
  reg: ParamRegistry,
  w: Weights,
  c: ModelConfig,
  img: EncodedImages,
  cap: EncodedCaptions,
  o: { threads: number; backend: string },
): Promise<Float32Array> {
  const nCap = cap.n;
  const shards = shardRanges(0, img.n, o.threads, DEFAULT_IMAGE_BLOCK);
  if (shards.length <= 1) return scoreMatrix(w, c, img, cap);
  const pool = await ScorePool.start({
    workers: shards.length - 1,
    backend: o.backend,
    config: c,
    weights: await reg.toArrays(),
    img,
    cap,
    imageBlock: DEFAULT_IMAGE_BLOCK,
    captionBlock: DEFAULT_CAPTION_BLOCK,
  });
  try {
    const mine = shards[0];
    // posted before the main thread starts its own share, which blocks the event loop until it is done
    const theirs = pool.score([mine[1], img.n], [0, nCap]);
    theirs.catch(() => undefined); // observed below
    const sims = new Float32Array(img.n * nCap);
    sims.set(scoreMatrix(w, c, img, cap, { imageRange: mine }), 0);
    sims.set(await theirs, mine[1] * nCap);
    return sims;
  } finally {
    await pool.close();
  }
}

/** sha256 of the weights (names, shapes and bytes, in name order): tells one model state from another. */
export async function weightsDigest(reg: ParamRegistry): Promise<string> {
  const h = crypto.createHash('sha256');
  const arrays = await reg.toArrays();
  for (const k of [...arrays.keys()].sort()) {
    const a = arrays.get(k)!;
    h.update(`${k}:${a.shape.join(',')};`);
    h.update(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  }
  return h.digest('hex');
}

/** A validation record of metrics.jsonl (stepLog.ts writes them). */
interface LoggedValidation {
  epoch: number;
  iteration: number;
  where: string;
  weights?: string;
  i2t: RecallMetrics;
  t2i: RecallMetrics;
}

/** The result metrics.jsonl already holds for this validation of these weights, if any. */
export function loggedValidation(
  lines: string,
  at: { epoch: number; iteration: number; where: string; weights: string },
): EvalResult | null {
  for (const line of lines.split('\n')) {
    if (!line.trim()) continue;
    let r: LoggedValidation;
    try {
      r = JSON.parse(line) as LoggedValidation;
    } catch {
      continue; // a line cut by a crash: not a validation to reuse
    }
    if (r.epoch === at.epoch && r.iteration === at.iteration && r.where === at.where && r.weights === at.weights)
      return combine(r.i2t, r.t2i);
  }
  return null;
}
