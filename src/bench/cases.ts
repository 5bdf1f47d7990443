// The benchmark cases: the plain matMul roofline, score blocks (in-process or the worker pool of runtime/scorePool.ts),
// one training step, and split encoding. Each returns one flat record that bench.ts prints as a JSON line.
// Every case builds its own random-weight registry (ParamRegistry.init) and disposes it, so cases can run in
// any subset and order; worker pools are always closed (finally), so the process exits by itself.
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { defaultModelConfig, type ModelConfig } from '../model/config.js';
import { resolveEngine, type EngineName } from '../runtime/engine.js';
import { openEvalEngine } from '../runtime/evalEngine.js';
import { ParamRegistry } from '../model/params.js';
import { Weights } from '../model/weights.js';
import { createScorer, type Scorer } from '../runtime/scorePool.js';
import { encodeCaptionTokens, encodeImages, type EncodedCaptions, type EncodedImages } from '../runtime/encode.js';
import { trainStep } from '../train/step.js';
import { StepPartner } from '../runtime/stepPartner.js';
import { oneThreadEngine } from '../runtime/stepEngine.js';
import { twoThreadEngine } from '../runtime/twoThreadEngine.js';
import { Adam } from '../train/adam.js';
import { Rng } from '../util/rng.js';
import { DEFAULT_CHUNK_MB, wasmHeapBytes } from '../ops/memoryGuard.js';
import { formatProfile, startProfiling, stopProfiling } from '../ops/profile.js';
import { captionFlops, IMAGE_FLOPS, MEAN_CAPTION_LENGTH, pairFlops, trainStepFlops } from './figures.js';
import {
  captionLengths,
  randomEncodedCaptions,
  randomEncodedImages,
  randomRegionFeatures,
  randomTokens,
  randomTrainBatch,
} from './synth.js';

const VOCAB = 11353;
const SEED = 20240601;

export type BenchRecord = Record<string, string | number | boolean | null>;

export interface BenchContext {
  backend: string;
  /** engine of the score cases (tfjs or onnx) */
  engine: EngineName;
  workers: number;
  /** plain 2-D matMul GFLOP/s of this run (null until the matmul case ran) */
  rooflineGflops: number | null;
  /** images actually scored for a 1000 × 5000 case (the rest is extrapolated) */
  measureImages: number;
  /** print a progress line to stderr at most this often (ms) */
  progressEveryMs: number;
  /** profile the timed step or block stage by stage (stderr, and `profile` in the record) */
  profile?: boolean;
}

const now = () => performance.now() / 1000;
const round = (x: number, d = 3) => Number(x.toFixed(d));

export function memoryFields(): BenchRecord {
  const heap = wasmHeapBytes();
  return {
    loadavg_1m: round(os.loadavg()[0], 2), // other processes on the machine share the cores
    peak_rss_mb: round(process.resourceUsage().maxRSS / 1024, 1), // maxRSS is in KiB; the whole process incl. workers
    rss_mb: round(process.memoryUsage().rss / 2 ** 20, 1),
    wasm_heap_mb: heap === null ? null : round(heap / 2 ** 20, 1),
  };
}

function perf(ctx: BenchContext, flops: number, seconds: number): BenchRecord {
  const gflops = flops / seconds / 1e9;
  return {
    gflop: round(flops / 1e9, 2),
    gflops: round(gflops, 2),
    roofline_gflops: ctx.rooflineGflops === null ? null : round(ctx.rooflineGflops, 2),
    pct_of_roofline: ctx.rooflineGflops === null ? null : round((100 * gflops) / ctx.rooflineGflops, 1),
  };
}

function disposeRegistry(reg: ParamRegistry): void {
  for (const e of reg.entries.values()) e.variable.dispose();
}

function progress(ctx: BenchContext, label: string): (done: number, total: number) => void {
  const t0 = now();
  let last = t0;
  return (done, total) => {
    const t = now();
    if (t - last < ctx.progressEveryMs / 1000 || done === 0) return;
    last = t;
    const rate = done / (t - t0);
    process.stderr.write(
      `[bench] ${label}: ${done}/${total} pairs, ${rate.toFixed(0)} pairs/s, ~${((total - done) / rate).toFixed(0)} s left\n`,
    );
  };
}

/** Plain (4608 × 2048) @ (2048 × 1024) on the active backend: 1 warm-up, then `reps` timed products. */
export function matmulCase(ctx: BenchContext, reps = 2, warmup = 1, m = 4608): BenchRecord {
  const [k, n] = [2048, 1024];
  const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
  const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
  // Not tf.tidy(() => ….dataSync()): tidy walks a returned typed array element by element looking for
  // tensors, and this row would time that walk instead of the product (docs/performance.md, The bench).
  const product = () => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  };
  for (let r = 0; r < warmup; r++) product();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    product();
    times.push(now() - t0);
  }
  tf.dispose([a, b]);
  const best = Math.min(...times);
  const flops = 2 * m * k * n;
  ctx.rooflineGflops = flops / best / 1e9;
  return {
    case: 'matmul',
    backend: ctx.backend,
    shape: `${m}x${k} @ ${k}x${n}`,
    seconds: round(best, 4),
    seconds_all: times.map((t) => round(t, 3)).join(','),
    ...perf(ctx, flops, best),
    note: `best of ${reps} timed reps after ${warmup} warm-up; one thread (the roofline of one wasm instance / worker)`,
    ...memoryFields(),
  };
}

let bigCaptions: EncodedCaptions | null = null;
/** The 5000 encoded captions of a Flickr30K-sized test split, generated once and shared by the two modules. */
function captionsFor(n: number, D: number): EncodedCaptions {
  if (n === 5000) return (bigCaptions ??= randomEncodedCaptions(captionLengths(5000, SEED + 4), D, SEED + 5));
  return randomEncodedCaptions(captionLengths(n, SEED + n + 1), D, SEED + n);
}

export interface ScoreCaseOptions {
  module: string;
  nImg: number;
  nCap: number;
  workers: number;
  /** score only the first `measure` images against all captions and extrapolate to nImg */
  measure?: number;
}

/** The engine's scorer: tfjs's createScorer, or onnx's (a pool of 1-thread sessions, or one 2-thread session). */
async function openScorer(
  ctx: BenchContext,
  reg: ParamRegistry,
  c: ModelConfig,
  workers: number,
  img: EncodedImages,
  cap: EncodedCaptions,
): Promise<Scorer> {
  if (ctx.engine === 'tfjs') return createScorer({ workers, backend: ctx.backend, reg, config: c, img, cap });
  const eng = await openEvalEngine(await resolveEngine('onnx', c.module), reg, c, ctx.backend);
  try {
    return await eng.scorer({ workers, img, cap });
  } finally {
    await eng.close();
  }
}

/** Scores of an nImg × nCap block (or its first `measure` images, extrapolated). */
export async function scoreCase(ctx: BenchContext, name: string, o: ScoreCaseOptions): Promise<BenchRecord> {
  const c = defaultModelConfig({ module: o.module, vocabSize: VOCAB });
  const D = c.embedSize;
  const reg = ParamRegistry.init(c, SEED);
  const nMeasured = Math.min(o.nImg, o.measure ?? o.nImg);
  const img = randomEncodedImages(nMeasured, D, SEED + 3);
  const cap = captionsFor(o.nCap, D);
  let scorer: Scorer | null = null;
  try {
    const t0 = now();
    scorer = await openScorer(ctx, reg, c, o.workers, img, cap);
    const startup = now() - t0;
    // Warm-up (kernel set-up, first allocations) on a small corner, not timed.
    const t1 = now();
    await scorer.score([0, Math.min(nMeasured, 10 * o.workers)], [0, Math.min(o.nCap, 20)]);
    const warm = now() - t1;
    if (ctx.profile) startProfiling();
    const cpu0 = process.cpuUsage();
    const t2 = now();
    const sims = await scorer.score([0, nMeasured], [0, o.nCap], progress(ctx, name));
    const seconds = now() - t2;
    const cpu = process.cpuUsage(cpu0);
    const profile = ctx.profile
      ? await reportProfile(`${name} (${nMeasured} x ${o.nCap}, this thread)`, seconds)
      : undefined;
    let bad = 0;
    for (let i = 0; i < sims.length; i++) if (!Number.isFinite(sims[i])) bad++;
    if (bad) throw new Error(`${name}: ${bad} non-finite scores`);
    const pairs = nMeasured * o.nCap;
    const pps = pairs / seconds;
    const totalPairs = o.nImg * o.nCap;
    const rec: BenchRecord = {
      case: name,
      engine: ctx.engine,
      backend: ctx.backend,
      module: o.module,
      shape: `${o.nImg}x${o.nCap}`,
      workers: scorer.workers,
      pairs: totalPairs,
      pairs_per_s: round(pps, 1),
      cpu_s: round((cpu.user + cpu.system) / 1e6, 3), // this process and its worker threads, during the timed part
      seconds: round(totalPairs / pps, 2),
      ...perf(ctx, pairFlops(o.module) * totalPairs, totalPairs / pps),
      startup_s: round(startup, 2),
      warmup_s: round(warm, 2),
    };
    if (nMeasured < o.nImg) {
      rec.extrapolated_from = `${nMeasured}x${o.nCap}`;
      rec.measured_seconds = round(seconds, 2);
      rec.note = `measured the first ${nMeasured} images against all ${o.nCap} captions; seconds = pairs / measured pairs/s`;
    }
    rec.flop_per_pair_m = pairFlops(o.module) / 1e6;
    if (profile) rec.profile = JSON.stringify(profile);
    return { ...rec, ...memoryFields() };
  } finally {
    if (scorer) await scorer.close(); // terminates the pool's worker threads
    disposeRegistry(reg);
  }
}

/** Stop the profilers (this thread's and the training worker's), print their tables to stderr, return both. */
async function reportProfile(name: string, seconds: number, remote?: StepPartner) {
  const main = stopProfiling();
  const worker = remote ? await remote.profile(false) : [];
  process.stderr.write(`\n${formatProfile(main, seconds * 1000, `${name}: main thread (${seconds.toFixed(2)} s)`)}\n`);
  if (remote) process.stderr.write(`\n${formatProfile(worker, seconds * 1000, `${name}: training worker thread`)}\n\n`);
  return { main, worker };
}

/**
 * Training steps (hinge + VSL visual semantic loss, dropout 0.4, clip 2, Adam): `warmup` untimed, then the median
 * of `reps` timed ones.
 */
export async function trainCase(
  ctx: BenchContext,
  name: string,
  module: string,
  B: number,
  warmup: number,
  chunkMb = DEFAULT_CHUNK_MB,
  reps = 1,
): Promise<BenchRecord> {
  const c = defaultModelConfig({ module, vocabSize: VOCAB });
  // vsl train's --workers: with 2, the training worker encodes and scores a share of the captions
  const threads = Math.min(2, ctx.workers);
  const partner =
    threads >= 2
      ? await StepPartner.start({ backend: ctx.backend, config: c, chunkBytes: chunkMb * 2 ** 20 })
      : undefined;
  const engine = partner ? twoThreadEngine(partner, chunkMb * 2 ** 20) : oneThreadEngine(chunkMb * 2 ** 20);
  const reg = ParamRegistry.init(c, SEED);
  const adam = new Adam(2e-4);
  const rng = new Rng(SEED + 7);
  const batch = randomTrainBatch(B, c.imgDim, VOCAB, SEED + B);
  const opts = {
    margin: 0.2,
    maxViolation: true,
    semantic: 'visual' as const,
    gradClip: 2.0,
    dropout: 0.4,
    engine, // train's --chunk-mb and --workers
    seed: rng.seed(),
  };
  try {
    const warmTimes: number[] = [];
    for (let i = 0; i < warmup; i++) {
      const t = now();
      trainStep(reg, c, adam, batch, opts);
      warmTimes.push(now() - t);
    }
    if (ctx.profile) {
      startProfiling();
      await partner?.profile(true);
    }
    // the median of `reps` timed steps (a profile takes one), with the CPU time of that step
    const timed: { seconds: number; cpu: NodeJS.CpuUsage; r: ReturnType<typeof trainStep> }[] = [];
    for (let i = 0; i < (ctx.profile ? 1 : reps); i++) {
      const cpu0 = process.cpuUsage();
      const t0 = now();
      const r = trainStep(reg, c, adam, batch, opts);
      timed.push({ seconds: now() - t0, cpu: process.cpuUsage(cpu0), r });
    }
    const { seconds, cpu, r } = [...timed].sort((a, b) => a.seconds - b.seconds)[Math.floor((timed.length - 1) / 2)];
    const profile = ctx.profile ? await reportProfile(name, seconds, partner) : undefined;
    if (!Number.isFinite(r.total)) throw new Error(`${name}: non-finite loss`);
    return {
      case: name,
      backend: ctx.backend,
      module,
      batch: B,
      s_per_step: round(seconds, 3),
      // CPU time of the whole process (both threads) during the step: the work done, less sensitive than
      // wall time to other processes on the machine
      cpu_s: round((cpu.user + cpu.system) / 1e6, 3),
      seconds: round(seconds, 3),
      warmup_steps: warmup,
      timed_steps: timed.length,
      seconds_all: timed.map((t) => round(t.seconds, 3)).join(','),
      warmup_s: warmTimes.map((t) => round(t, 2)).join(',') || null,
      ...perf(ctx, trainStepFlops(module, B), seconds),
      flop_model: '3 x (B^2 x per-pair + B x (image fc+VisualSA + caption GRU+TextSA))',
      loss: round(r.total, 4),
      threads,
      chunk_mb: chunkMb,
      ...(profile ? { profile: JSON.stringify(profile) } : {}),
      ...memoryFields(),
    };
  } finally {
    await partner?.close();
    adam.dispose();
    disposeRegistry(reg);
  }
}

/** Encode 1000 images of (36, 2048) random features (batches of 100, the eval default). */
export function encodeImagesCase(ctx: BenchContext, n = 1000): BenchRecord {
  const c = defaultModelConfig({ module: 'SGR', vocabSize: VOCAB });
  const reg = ParamRegistry.init(c, SEED);
  const w = Weights.of(reg);
  const batch = 100;
  const feats = randomRegionFeatures(batch, c.imgDim, SEED + 11); // every batch reads the same random rows
  try {
    encodeImages(w, c, batch, (s, e) => feats.subarray(0, (e - s) * 36 * c.imgDim), batch); // warm-up
    const t0 = now();
    const enc = encodeImages(w, c, n, (s, e) => feats.subarray(0, (e - s) * 36 * c.imgDim), batch);
    const seconds = now() - t0;
    if (!Number.isFinite(enc.vGlobal[0])) throw new Error('encode-images: non-finite output');
    return {
      case: `encode-images-${n}`,
      backend: ctx.backend,
      items: n,
      items_per_s: round(n / seconds, 1),
      seconds: round(seconds, 2),
      ...perf(ctx, n * IMAGE_FLOPS, seconds),
      flop_per_item_m: round(IMAGE_FLOPS / 1e6, 1),
      note: 'main thread (one core); fc 2048->1024 + VisualSA',
      ...memoryFields(),
    };
  } finally {
    w.dispose();
    disposeRegistry(reg);
  }
}

/** Encode 5000 captions of 12 tokens (vocab 11353; batches of 128, the eval default). */
export function encodeCaptionsCase(ctx: BenchContext, n = 5000): BenchRecord {
  const c = defaultModelConfig({ module: 'SGR', vocabSize: VOCAB });
  const reg = ParamRegistry.init(c, SEED);
  const w = Weights.of(reg);
  const tokens = randomTokens(captionLengths(n, SEED + 12), VOCAB, SEED + 13);
  try {
    encodeCaptionTokens(w, c, tokens.slice(0, 128)); // warm-up
    const t0 = now();
    const enc = encodeCaptionTokens(w, c, tokens);
    const seconds = now() - t0;
    if (!Number.isFinite(enc.tGlobal[0])) throw new Error('encode-captions: non-finite output');
    return {
      case: `encode-captions-${n}`,
      backend: ctx.backend,
      items: n,
      items_per_s: round(n / seconds, 1),
      seconds: round(seconds, 2),
      ...perf(ctx, n * captionFlops(), seconds),
      flop_per_item_m: round(captionFlops() / 1e6, 1),
      note: `main thread (one core); bi-GRU over captions of ${MEAN_CAPTION_LENGTH.toFixed(1)} tokens on average + TextSA`,
      ...memoryFields(),
    };
  } finally {
    w.dispose();
    disposeRegistry(reg);
  }
}
