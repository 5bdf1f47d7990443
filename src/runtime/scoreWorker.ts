// Worker-thread side of the score pool (scorePool.ts has the protocol and the reasons).
//
// Started by ScorePool with `workerData: WorkerInit`: the backend name, the model config, the weights as host
// arrays, and the encoded images/captions (their big arrays live in SharedArrayBuffers, so every worker reads
// the same memory without a copy). The worker starts its own tfjs backend (selectBackend with the main
// thread's backend name), rebuilds the registry, posts {type:'ready'}, then answers each
// {type:'score', id, imageRange, captionRange} with progress messages and one {type:'result', id, sims}
// (sims transferred, not copied). Any failure is posted as {type:'error', id?, message, vsl} and the worker
// keeps running (the main thread decides to terminate it); nothing here calls process.exit.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { ModelConfig } from '../model/config.js';
import type { HostArray } from '../model/params.js';
import type { EncodedCaptions, EncodedImages } from './encode.js';

export interface WorkerInit {
  index: number;
  backend: string;
  logLevel: string;
  config: ModelConfig;
  weights: [string, HostArray][];
  img: EncodedImages;
  cap: EncodedCaptions;
  imageBlock: number;
  captionBlock: number;
}

/** `cap` and `imageBlock`, when given, replace the init's for this request (a query's own captions). */
export type ToWorker = {
  type: 'score';
  id: number;
  imageRange: [number, number];
  captionRange: [number, number];
  cap?: EncodedCaptions;
  imageBlock?: number;
};

export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; id: number; done: number }
  | { type: 'result'; id: number; sims: Float32Array }
  | { type: 'error'; id?: number; message: string; vsl: boolean };

const PROGRESS_EVERY_MS = 250;

function errorMessage(e: unknown, init: WorkerInit | undefined): FromWorker & { type: 'error' } {
  const err = e instanceof Error ? e : new Error(String(e));
  const vsl = err.name === 'VslError';
  const where = init ? `score worker ${init.index}` : 'score worker';
  return { type: 'error', message: vsl ? err.message : `${where}: ${err.stack ?? err.message}`, vsl };
}

async function run(): Promise<void> {
  const port = parentPort!;
  const init = workerData as WorkerInit;
  const ready: Promise<{ score: (m: ToWorker) => Float32Array }> = (async () => {
    // Imported here, not at the top: a worker must be able to report a failing import as a message.
    const { setLogLevel } = await import('../util/log.js');
    setLogLevel(init.logLevel);
    const { selectBackend } = await import('../ops/backend.js');
    await selectBackend(init.backend as Parameters<typeof selectBackend>[0]);
    const { ParamRegistry } = await import('../model/params.js');
    const { Weights } = await import('../model/weights.js');
    const { scoreMatrix } = await import('./scoreMatrix.js');
    const reg = ParamRegistry.fromArrays(init.config, new Map(init.weights), 'weights');
    init.weights = []; // the registry holds its own copy
    const w = Weights.of(reg);
    return {
      score: (m: ToWorker) => {
        let last = 0;
        return scoreMatrix(w, init.config, init.img, m.cap ?? init.cap, {
          imageRange: m.imageRange,
          captionRange: m.captionRange,
          imageBlock: m.imageBlock ?? init.imageBlock,
          captionBlock: init.captionBlock,
          onProgress: (done, total) => {
            const now = Date.now();
            if (now - last >= PROGRESS_EVERY_MS || done === total) {
              last = now;
              port.postMessage({ type: 'progress', id: m.id, done } satisfies FromWorker);
            }
          },
        });
      },
    };
  })();
  try {
    await ready;
    port.postMessage({ type: 'ready' } satisfies FromWorker);
  } catch (e) {
    port.postMessage(errorMessage(e, init));
    return;
  }
  port.on('message', (m: ToWorker) => {
    void (async () => {
      try {
        const { score } = await ready;
        if (m.type !== 'score') throw new Error(`unknown message ${JSON.stringify(m).slice(0, 80)}`);
        const sims = score(m);
        port.postMessage({ type: 'result', id: m.id, sims } satisfies FromWorker, [sims.buffer as ArrayBuffer]);
      } catch (e) {
        port.postMessage({ ...errorMessage(e, init), id: m.id });
      }
    })();
  });
}

if (!isMainThread && parentPort) void run();
