// Worker-thread side of OnnxScorePool (scorePool.ts): one ONNX Runtime session of the score graph per worker
// (1 intra-op thread by default), scoring the image chunks the pool hands out against a caption range of the
// encoded split, which lives in SharedArrayBuffers (read in place, no copy). Started with
// `workerData: OnnxWorkerInit`; posts {type:'ready'}, then answers each {type:'score'} with one {type:'result'}
// (the rows transferred, not copied), or {type:'error'}. Nothing here exits the process: the pool terminates it.
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelConfig } from '../../model/config.js';
import type { EncodedCaptions, EncodedImages } from '../encode.js';
import type { Range } from './runner.js';

export interface OnnxWorkerInit {
  index: number;
  config: ModelConfig;
  /** the score graph: its bytes, or a file */
  score: { bytes: Uint8Array } | { path: string };
  intraOpThreads: number;
  img: EncodedImages;
  cap: EncodedCaptions;
  imageBlock: number;
  captionBlock: number;
  bucketByLength: boolean;
}

export type ToOnnxWorker = { type: 'score'; id: number; imageRange: Range; captionRange: Range };

export type FromOnnxWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; sims: Float32Array }
  | { type: 'error'; id?: number; message: string; vsl: boolean };

function errorMessage(e: unknown, init: OnnxWorkerInit, id?: number): FromOnnxWorker {
  const err = e instanceof Error ? e : new Error(String(e));
  const vsl = err.name === 'VslError';
  return {
    type: 'error',
    id,
    message: vsl ? err.message : `score worker ${init.index}: ${err.stack ?? err.message}`,
    vsl,
  };
}

async function run(): Promise<void> {
  const port = parentPort!;
  const init = workerData as OnnxWorkerInit;
  let model: import('./runner.js').OnnxModel;
  try {
    const { OnnxModel } = await import('./runner.js'); // here, so that a failing import is reported as a message
    const src = 'path' in init.score ? { path: init.score.path } : { bytes: init.score.bytes, name: 'score' };
    model = await OnnxModel.fromSources(
      init.config,
      { score: src },
      {
        only: ['score'],
        intraOpThreads: init.intraOpThreads,
      },
    );
  } catch (e) {
    port.postMessage(errorMessage(e, init));
    return;
  }
  port.on('message', (m: ToOnnxWorker) => {
    model
      .scoreMatrix(init.img, init.cap, {
        imageRange: m.imageRange,
        captionRange: m.captionRange,
        imageBlock: init.imageBlock,
        captionBlock: init.captionBlock,
        bucketByLength: init.bucketByLength,
      })
      .then(
        (sims) =>
          port.postMessage({ type: 'result', id: m.id, sims } satisfies FromOnnxWorker, [sims.buffer as ArrayBuffer]),
        (e) => port.postMessage(errorMessage(e, init, m.id)),
      );
  });
  port.postMessage({ type: 'ready' } satisfies FromOnnxWorker);
}

void run();
