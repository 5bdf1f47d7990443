// The score matrix on ONNX Runtime from several worker threads, each with its own 1-thread session of the score
// graph (scoreWorker.ts). ORT's session.run blocks the thread that calls it, so two sessions in one thread never
// overlap; a worker each does. The pool is a runtime/scorePool.ts Scorer, so that evaluation can take either.
//
// Work is handed out as chunks of images (a few per worker and request, so that a worker slowed by another
// process does not hold the others up), from one queue shared by the requests in flight (eval keeps one block per
// worker in flight); every chunk is scored against the whole caption range. The encodings go
// to the workers once, in shared memory. An error in a worker rejects the request with a VslError naming it.
import { Worker } from 'node:worker_threads';
import type { ModelConfig } from '../../model/config.js';
import { VslError } from '../../util/errors.js';
import type { OnnxGraphs } from './graphs.js';
import type { EncodedCaptions, EncodedImages } from '../encode.js';
import type { ProgressFn, Range, Scorer } from '../scorePool.js';
import { ONNX_CAPTION_BLOCK, ONNX_IMAGE_BLOCK } from './runner.js';
import type { FromOnnxWorker, OnnxWorkerInit, ToOnnxWorker } from './scoreWorker.js';

export interface OnnxPoolOptions {
  workers: number;
  /** intra-op threads of each worker's session (1) */
  threadsPerWorker?: number;
  /** the score graph in memory (with its config), or a graph file */
  graph: Pick<OnnxGraphs, 'config' | 'score'> | { config: ModelConfig; path: string };
  img: EncodedImages;
  cap: EncodedCaptions;
  imageBlock?: number;
  captionBlock?: number;
  bucketByLength?: boolean;
  /** images per chunk handed to a worker (default: about 4 chunks per worker and request, at most 32) */
  chunkImages?: number;
}

interface Job {
  imageRange: Range;
  captionRange: Range;
  resolve: (s: Float32Array) => void;
  reject: (e: Error) => void;
}

interface Slot {
  index: number;
  worker: Worker;
  busy: { id: number; resolve: (s: Float32Array) => void; reject: (e: Error) => void } | null;
  dead: Error | null;
}

function shared<T extends Float32Array | Int32Array>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const Ctor = a.constructor as { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number };
  const out = new Ctor(new SharedArrayBuffer(a.length * Ctor.BYTES_PER_ELEMENT));
  out.set(a);
  return out;
}

export class OnnxScorePool implements Scorer {
  private nextId = 0;
  private closing = false;
  private readonly queue: Job[] = [];
  private constructor(
    private readonly slots: Slot[],
    private readonly chunkImages: number | undefined,
  ) {}

  get workers(): number {
    return this.slots.length;
  }

  static async start(o: OnnxPoolOptions): Promise<OnnxScorePool> {
    if (!Number.isSafeInteger(o.workers) || o.workers < 1)
      throw new VslError(`workers: expected an integer >= 1, found ${o.workers}`);
    const img: EncodedImages = { n: o.img.n, regions: shared(o.img.regions), vGlobal: shared(o.img.vGlobal) };
    const c = o.cap;
    const cap: EncodedCaptions = {
      n: c.n,
      lengths: shared(c.lengths),
      offsets: shared(c.offsets),
      words: shared(c.words),
      tGlobal: shared(c.tGlobal),
    };
    const slots: Slot[] = [];
    const readies: Promise<void>[] = [];
    for (let index = 0; index < o.workers; index++) {
      const init: OnnxWorkerInit = {
        index,
        config: o.graph.config,
        score: 'path' in o.graph ? { path: o.graph.path } : { bytes: o.graph.score },
        intraOpThreads: o.threadsPerWorker ?? 1,
        img,
        cap,
        imageBlock: o.imageBlock ?? ONNX_IMAGE_BLOCK,
        captionBlock: o.captionBlock ?? ONNX_CAPTION_BLOCK,
        bucketByLength: o.bucketByLength ?? true,
      };
      const worker = new Worker(new URL('./scoreWorker.js', import.meta.url), { workerData: init });
      const slot: Slot = { index, worker, busy: null, dead: null };
      slots.push(slot);
      readies.push(
        new Promise<void>((resolve, reject) => {
          const fail = (e: Error) => {
            if (slot.dead) return;
            slot.dead = e;
            reject(e);
            slot.busy?.reject(e);
            slot.busy = null;
          };
          worker.on('message', (m: FromOnnxWorker) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'result' && slot.busy?.id === m.id) {
              const b = slot.busy;
              slot.busy = null;
              b.resolve(m.sims);
            } else if (m.type === 'error') {
              const e = new VslError(m.vsl ? `score worker ${index}: ${m.message}` : m.message);
              if (m.id === undefined) fail(e);
              else if (slot.busy?.id === m.id) {
                const b = slot.busy;
                slot.busy = null;
                b.reject(e);
              }
            }
          });
          worker.on('error', (e) => fail(new VslError(`score worker ${index} crashed: ${e.message}`)));
          worker.on('exit', (code) => {
            if (!pool.closing) fail(new VslError(`score worker ${index} exited unexpectedly (code ${code})`));
          });
        }),
      );
    }
    const pool = new OnnxScorePool(slots, o.chunkImages);
    try {
      await Promise.all(readies);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Hand queued chunks to idle workers (requests may overlap: eval/scoreBlocks.ts keeps one per worker). */
  private pump(): void {
    for (const slot of this.slots) {
      if (slot.busy || slot.dead || this.queue.length === 0) continue;
      const job = this.queue.shift()!;
      const id = this.nextId++;
      slot.busy = { id, resolve: job.resolve, reject: job.reject };
      slot.worker.postMessage({
        type: 'score',
        id,
        imageRange: job.imageRange,
        captionRange: job.captionRange,
      } satisfies ToOnnxWorker);
    }
    if (this.queue.length && this.slots.every((s) => s.dead)) {
      for (const job of this.queue.splice(0)) job.reject(this.slots[0].dead!);
    }
  }

  private run(imageRange: Range, captionRange: Range): Promise<Float32Array> {
    return new Promise<Float32Array>((resolve, reject) => {
      const done =
        <T>(f: (v: T) => void) =>
        (v: T) => {
          f(v);
          this.pump();
        };
      this.queue.push({ imageRange, captionRange, resolve: done(resolve), reject: done(reject) });
      this.pump();
    });
  }

  async score([i0, i1]: Range, captionRange: Range, onProgress?: ProgressFn): Promise<Float32Array> {
    if (this.closing) throw new VslError('score workers: the pool is closed');
    const nCap = captionRange[1] - captionRange[0];
    const out = new Float32Array((i1 - i0) * nCap);
    const chunk = this.chunkImages ?? Math.max(1, Math.min(32, Math.ceil((i1 - i0) / (4 * this.slots.length))));
    let done = 0;
    const total = (i1 - i0) * nCap;
    const chunks: Promise<void>[] = [];
    for (let s = i0; s < i1; s += chunk) {
      const range: Range = [s, Math.min(i1, s + chunk)];
      chunks.push(
        this.run(range, captionRange).then((sims) => {
          out.set(sims, (range[0] - i0) * nCap);
          done += sims.length;
          onProgress?.(done, total);
        }),
      );
    }
    await Promise.all(chunks);
    return out;
  }

  /** Terminate every worker (idempotent). */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.slots.map(async (s) => {
        s.dead ??= new VslError('score workers: the pool is closed');
        s.busy?.reject(s.dead);
        s.busy = null;
        for (const job of this.queue.splice(0)) job.reject(s.dead);
        await s.worker.terminate();
      }),
    );
  }
}
