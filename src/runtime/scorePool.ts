// The score matrix on several cores. tfjs-wasm runs single-threaded in Node, so evaluation starts N
// worker_threads (scoreWorker.ts), each with its own tfjs and backend instance, and splits the IMAGES of each
// requested block into N contiguous shards (boundaries aligned to the image block size, so each worker forms
// exactly the image groups the in-process scorer would: the two give the same numbers). Captions are never
// split: every worker scores its images against the whole caption range.
//
// Data flow: the encoded images and captions are copied once into SharedArrayBuffers that all workers read
// (no per-worker copy); the weights go to each worker as host arrays (registry.toArrays()); each worker sends
// back its rows as a transferred Float32Array. A pool stays up for several requests (the five COCO-1K folds)
// and must be closed (`close()` terminates the workers). An error inside a worker (backend start, weights,
// scoring) rejects the request with a VslError naming the worker; a worker that dies does the same.
//
// `createScorer` picks the in-process scorer for workers <= 1 and a pool otherwise.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import type { ModelConfig } from '../model/config.js';
import type { HostArray, ParamRegistry } from '../model/params.js';
import { Weights } from '../model/weights.js';
import type { EncodedCaptions, EncodedImages } from './encode.js';
import { DEFAULT_CAPTION_BLOCK, DEFAULT_IMAGE_BLOCK, scoreMatrix } from './scoreMatrix.js';
import type { FromWorker, ToWorker, WorkerInit } from './scoreWorker.js';

export type Range = [number, number];
export type ProgressFn = (done: number, total: number) => void;

/**
 * What one request may change: other captions than the scorer's own (a query's sentences, encoded per request;
 * on shared memory they reach the workers without a copy), another image block.
 */
export interface ScoreRequest {
  cap?: EncodedCaptions;
  imageBlock?: number;
}

/** A way to compute (imageRange × captionRange) score blocks; close() releases workers or weights. */
export interface Scorer {
  readonly workers: number;
  score(imageRange: Range, captionRange: Range, onProgress?: ProgressFn, request?: ScoreRequest): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * Default worker count: min(2, cores) for the single-threaded backends (wasm, cpu); 1 for the native
 * TensorFlow backends, which use every core by themselves (and load a native addon per thread).
 */
export function defaultWorkers(backend: string): number {
  if (backend === 'tensorflow' || backend === 'tensorflow-gpu') return 1;
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(2, cores));
}

/**
 * Cut [i0, i1) into at most n contiguous shards of nearly equal size whose inner boundaries fall on multiples of
 * `align` counted from i0 (empty shards are dropped).
 */
export function shardRanges(i0: number, i1: number, n: number, align = 1): Range[] {
  const total = i1 - i0;
  if (total <= 0) return [];
  const units = Math.ceil(total / align);
  const k = Math.max(1, Math.min(n, units));
  const out: Range[] = [];
  let prev = i0;
  for (let s = 1; s <= k; s++) {
    const end = s === k ? i1 : Math.min(i1, i0 + Math.floor((units * s) / k) * align);
    if (end > prev) out.push([prev, end]);
    prev = Math.max(prev, end);
  }
  return out;
}

function shared<T extends Float32Array | Int32Array>(a: T): T {
  const Ctor = a.constructor as { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number };
  const out = new Ctor(new SharedArrayBuffer(a.length * Ctor.BYTES_PER_ELEMENT));
  out.set(a);
  return out;
}

/** Copies of the encoded arrays in shared memory (already-shared arrays are kept). */
function shareImages(img: EncodedImages): EncodedImages {
  const keep = (a: Float32Array) => (a.buffer instanceof SharedArrayBuffer ? a : shared(a));
  return { n: img.n, regions: keep(img.regions), vGlobal: keep(img.vGlobal) };
}
function shareCaptions(cap: EncodedCaptions): EncodedCaptions {
  const keep = <T extends Float32Array | Int32Array>(a: T): T =>
    a.buffer instanceof SharedArrayBuffer ? a : shared(a);
  return {
    n: cap.n,
    lengths: keep(cap.lengths),
    offsets: keep(cap.offsets),
    words: keep(cap.words),
    tGlobal: keep(cap.tGlobal),
  };
}

/** Scores on the calling thread (the current backend). */
class InProcessScorer implements Scorer {
  readonly workers = 1;
  private w: Weights;
  constructor(
    reg: ParamRegistry,
    private readonly config: ModelConfig,
    private readonly img: EncodedImages,
    private readonly cap: EncodedCaptions,
    private readonly imageBlock = DEFAULT_IMAGE_BLOCK,
    private readonly captionBlock = DEFAULT_CAPTION_BLOCK,
  ) {
    this.w = Weights.of(reg);
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- Scorer's score is async (the pool's waits); this one scores on the calling thread, and its throw must reach the caller as a rejection
  async score(
    imageRange: Range,
    captionRange: Range,
    onProgress?: ProgressFn,
    request: ScoreRequest = {},
  ): Promise<Float32Array> {
    return scoreMatrix(this.w, this.config, this.img, request.cap ?? this.cap, {
      imageRange,
      captionRange,
      imageBlock: request.imageBlock ?? this.imageBlock,
      captionBlock: this.captionBlock,
      onProgress,
    });
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- Scorer's close is async (the pool's waits for its workers)
  async close(): Promise<void> {
    this.w.dispose();
  }
}

interface Pending {
  resolve: (a: Float32Array) => void;
  reject: (e: Error) => void;
  onDone: (done: number) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  dead: Error | null;
}

export interface PoolOptions {
  workers: number;
  /** Backend name each worker selects (the main thread's active backend). */
  backend: string;
  config: ModelConfig;
  weights: Map<string, HostArray>;
  img: EncodedImages;
  cap: EncodedCaptions;
  imageBlock?: number;
  captionBlock?: number;
  /** Log level inside the workers (default: warn, so that N workers do not repeat the backend banner). */
  logLevel?: string;
}

/** N score workers sharing the encoded split. Start with ScorePool.start; always close(). */
export class ScorePool implements Scorer {
  private nextId = 0;
  private closing = false;
  private constructor(
    private readonly slots: Slot[],
    private readonly imageBlock: number,
  ) {}

  get workers(): number {
    return this.slots.length;
  }

  static async start(o: PoolOptions): Promise<ScorePool> {
    if (!Number.isSafeInteger(o.workers) || o.workers < 1)
      throw new VslError(`--workers: expected an integer >= 1, found ${o.workers}`);
    const img = shareImages(o.img);
    const cap = shareCaptions(o.cap);
    const imageBlock = o.imageBlock ?? DEFAULT_IMAGE_BLOCK;
    const weights = [...o.weights];
    const slots: Slot[] = [];
    const readies: Promise<void>[] = [];
    for (let index = 0; index < o.workers; index++) {
      const init: WorkerInit = {
        index,
        backend: o.backend,
        logLevel: o.logLevel ?? 'warn',
        config: o.config,
        weights,
        img,
        cap,
        imageBlock,
        captionBlock: o.captionBlock ?? DEFAULT_CAPTION_BLOCK,
      };
      const worker = new Worker(new URL('./scoreWorker.js', import.meta.url), { workerData: init });
      const slot: Slot = { worker, pending: new Map(), dead: null };
      slots.push(slot);
      readies.push(
        new Promise<void>((resolve, reject) => {
          let isReady = false;
          const fail = (e: Error) => {
            if (slot.dead) return;
            slot.dead = e;
            if (!isReady) reject(e);
            for (const p of slot.pending.values()) p.reject(e);
            slot.pending.clear();
          };
          worker.on('message', (m: FromWorker) => {
            switch (m.type) {
              case 'ready':
                isReady = true;
                resolve();
                break;
              case 'progress':
                slot.pending.get(m.id)?.onDone(m.done);
                break;
              case 'result': {
                const p = slot.pending.get(m.id);
                slot.pending.delete(m.id);
                p?.resolve(m.sims);
                break;
              }
              case 'error': {
                const e = new VslError(m.vsl ? `score worker ${index}: ${m.message}` : m.message);
                if (m.id === undefined) fail(e);
                else {
                  const p = slot.pending.get(m.id);
                  slot.pending.delete(m.id);
                  p?.reject(e);
                }
                break;
              }
            }
          });
          worker.on('error', (e) => fail(new VslError(`score worker ${index} crashed: ${e.stack ?? e.message}`)));
          worker.on('exit', (code) => {
            if (!pool.closing) fail(new VslError(`score worker ${index} exited unexpectedly (code ${code})`));
          });
        }),
      );
    }
    const pool = new ScorePool(slots, imageBlock);
    try {
      await Promise.all(readies);
    } catch (e) {
      await pool.close();
      throw e;
    }
    log().debug({ workers: o.workers, backend: o.backend }, 'score workers ready');
    return pool;
  }

  async score(
    imageRange: Range,
    captionRange: Range,
    onProgress?: ProgressFn,
    request: ScoreRequest = {},
  ): Promise<Float32Array> {
    if (this.closing) throw new VslError('score workers: the pool is closed');
    const [i0, i1] = imageRange;
    const nCap = captionRange[1] - captionRange[0];
    const out = new Float32Array((i1 - i0) * nCap);
    const imageBlock = request.imageBlock ?? this.imageBlock;
    const shards = shardRanges(i0, i1, this.slots.length, imageBlock);
    // Requests may overlap (one block per worker, eval/scoreBlocks.ts): the least busy workers take the shards.
    const slotOrder = this.slots
      .map((_, k) => k)
      .sort((a, b) => this.slots[a].pending.size - this.slots[b].pending.size);
    const total = (i1 - i0) * nCap;
    const done = new Array<number>(shards.length).fill(0);
    const report = () =>
      onProgress?.(
        done.reduce((a, b) => a + b, 0),
        total,
      );
    await Promise.all(
      shards.map(
        (range, s) =>
          new Promise<void>((resolve, reject) => {
            const slot = this.slots[slotOrder[s]];
            if (slot.dead) return reject(slot.dead);
            const id = this.nextId++;
            slot.pending.set(id, {
              resolve: (sims) => {
                const expected = (range[1] - range[0]) * nCap;
                if (sims.length !== expected) {
                  reject(new VslError(`score worker ${slotOrder[s]}: expected ${expected} scores, got ${sims.length}`));
                  return;
                }
                out.set(sims, (range[0] - i0) * nCap);
                done[s] = expected;
                report();
                resolve();
              },
              reject,
              onDone: (d) => {
                done[s] = d;
                report();
              },
            });
            slot.worker.postMessage({
              type: 'score',
              id,
              imageRange: range,
              captionRange,
              cap: request.cap,
              imageBlock: request.imageBlock,
            } satisfies ToWorker);
          }),
      ),
    );
    return out;
  }

  /** Terminate every worker (idempotent). */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.slots.map(async (s) => {
        s.dead ??= new VslError('score workers: the pool is closed');
        for (const p of s.pending.values()) p.reject(s.dead);
        s.pending.clear();
        await s.worker.terminate();
      }),
    );
  }
}

export interface ScorerOptions {
  workers: number;
  backend: string;
  reg: ParamRegistry;
  config: ModelConfig;
  img: EncodedImages;
  cap: EncodedCaptions;
  imageBlock?: number;
  captionBlock?: number;
}

/** In-process for workers <= 1, else a ScorePool. */
export async function createScorer(o: ScorerOptions): Promise<Scorer> {
  if (o.workers <= 1) return new InProcessScorer(o.reg, o.config, o.img, o.cap, o.imageBlock, o.captionBlock);
  return ScorePool.start({
    workers: o.workers,
    backend: o.backend,
    config: o.config,
    weights: await o.reg.toArrays(),
    img: o.img,
    cap: o.cap,
    imageBlock: o.imageBlock,
    captionBlock: o.captionBlock,
  });
}
