// Worker-thread side of RemoteBlock (remoteBlock.ts): scores and differentiates the caption range of a
// training batch that the main thread hands over, on its own tfjs backend instance (a second core).
//
// The main thread cannot receive messages while it waits inside a training step (the step is synchronous,
// inside tfjs' gradient machinery), so every answer goes through memory it already holds: each request
// carries SharedArrayBuffers for the results and a control word; the worker fills them, then stores the
// new state in the control word and notifies. Requests come as ordinary messages.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type * as TF from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import type { RemoteGradients, RemoteInputs, RemoteScores } from './chunkedScores.js';
import type { StageTotals } from './profile.js';

export interface BlockWorkerInit {
  backend: string;
  logLevel: string;
  config: ModelConfig;
  chunkBytes: number;
  /** control word: see State */
  control: Int32Array;
  /** UTF-8 error text when the state is Error */
  errorText: Uint8Array;
}

/** Values of the control word. */
export const enum State {
  Busy = 0,
  Ready = 1, // started, or a request answered
  Error = 2,
}

export type ToBlockWorker =
  | { type: 'forward'; inputs: RemoteInputs; out: RemoteScores }
  | { type: 'backward'; dS: Float32Array; out: RemoteGradients }
  | { type: 'profile'; on: boolean };

/** The answer to a profile request (a plain message: the main thread is not inside a step then). */
export interface ProfileReply {
  type: 'profile';
  totals: StageTotals[];
}

async function run(): Promise<void> {
  const init = workerData as BlockWorkerInit;
  const port = parentPort!;
  const done = (state: State, error?: unknown) => {
    if (error !== undefined) {
      const e = error instanceof Error ? error : new Error(String(error));
      const text = new TextEncoder().encode(e.name === 'VslError' ? e.message : (e.stack ?? e.message));
      init.errorText.fill(0);
      init.errorText.set(text.subarray(0, init.errorText.length));
    }
    Atomics.store(init.control, 0, state);
    Atomics.notify(init.control, 0);
  };
  try {
    // Imported here, not at the top: a failing import is reported through the control word too.
    const { setLogLevel } = await import('../util/log.js');
    setLogLevel(init.logLevel);
    const { selectBackend } = await import('./backend.js');
    await selectBackend(init.backend as Parameters<typeof selectBackend>[0]);
    const tf = await import('@tensorflow/tfjs');
    const { chunkedScores } = await import('./chunkedScores.js');
    const { valueAndGradients } = await import('./tape.js');
    type Tensors = {
      regions: TF.Tensor3D;
      vGlobal: TF.Tensor2D;
      words: TF.Tensor3D;
      tGlobal: TF.Tensor2D;
      params: TF.Tensor[];
    };
    let held: { inputs: RemoteInputs; t: Tensors } | null = null;
    const release = () => {
      if (held) tf.dispose([held.t.regions, held.t.vGlobal, held.t.words, held.t.tGlobal, ...held.t.params]);
      held = null;
    };
    const scores = (
      inp: RemoteInputs,
      t: Tensors,
      ps: TF.Tensor[],
      safStats?: { mean: TF.Tensor1D; varUnbiased: TF.Tensor1D }[],
    ) =>
      chunkedScores(
        init.config,
        { regions: t.regions, vGlobal: t.vGlobal },
        { words: t.words, tGlobal: t.tGlobal, lengths: inp.lengths },
        new Map(inp.params.map(([n], i) => [n, ps[i]])),
        { chunkBytes: init.chunkBytes, safStats },
      );
    const profile = await import('./profile.js');
    port.on('message', (m: ToBlockWorker) => {
      if (m.type === 'profile') {
        if (m.on) profile.startProfiling();
        port.postMessage({ type: 'profile', totals: m.on ? [] : profile.stopProfiling() } satisfies ProfileReply);
        return;
      }
      try {
        if (m.type === 'forward') {
          release();
          const inp = m.inputs;
          const nr = inp.lengths.length;
          const t: Tensors = {
            regions: tf.tensor3d(inp.regions, [inp.nImg, inp.K, inp.D]),
            vGlobal: tf.tensor2d(inp.vGlobal, [inp.nImg, inp.D]),
            words: tf.tensor3d(inp.words, [nr, inp.Lr, inp.D]),
            tGlobal: tf.tensor2d(inp.tGlobal, [nr, inp.D]),
            params: inp.params.map(([, shape, v]) => tf.tensor(v, shape)),
          };
          held = { inputs: inp, t };
          const stats: { mean: TF.Tensor1D; varUnbiased: TF.Tensor1D }[] = [];
          const sims = tf.tidy(() => scores(inp, t, t.params, stats));
          m.out.sims.set(sims.dataSync());
          sims.dispose();
          if (stats.length) {
            const mean = tf.concat(stats.map((s) => s.mean));
            const v = tf.concat(stats.map((s) => s.varUnbiased));
            m.out.safMean.set(mean.dataSync());
            m.out.safVar.set(v.dataSync());
            tf.dispose([mean, v, ...stats.flatMap((s) => [s.mean, s.varUnbiased])]);
          }
        } else if (m.type === 'backward') {
          if (!held) throw new Error('block worker: backward without a forward');
          const { inputs: inp, t } = held;
          const dS = tf.tensor2d(m.dS, [inp.nImg, inp.lengths.length]);
          const { value, grads } = valueAndGradients(
            (r, v, w, g, ...ps) => {
              const stats: { mean: TF.Tensor1D; varUnbiased: TF.Tensor1D }[] = [];
              const s = scores(
                inp,
                {
                  regions: r as TF.Tensor3D,
                  vGlobal: v as TF.Tensor2D,
                  words: w as TF.Tensor3D,
                  tGlobal: g as TF.Tensor2D,
                  params: ps,
                },
                ps,
                stats,
              );
              tf.dispose(stats.flatMap((x) => [x.mean, x.varUnbiased])); // taken in the forward request
              return tf.sum(tf.mul(s, dS));
            },
            [t.regions, t.vGlobal, t.words, t.tGlobal, ...t.params],
          );
          const [gr, gv, gw, gt, ...gp] = grads;
          m.out.regions.set(gr.dataSync());
          m.out.vGlobal.set(gv.dataSync());
          m.out.words.set(gw.dataSync());
          m.out.tGlobal.set(gt.dataSync());
          gp.forEach((g, i) => m.out.params[i].set(g.dataSync()));
          tf.dispose([value, dS, ...grads]);
          release();
        }
        done(State.Ready);
      } catch (e) {
        release();
        done(State.Error, e);
      }
    });
    done(State.Ready);
  } catch (e) {
    done(State.Error, e);
  }
}

if (!isMainThread && parentPort) void run();
