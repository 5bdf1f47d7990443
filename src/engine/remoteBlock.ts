// A second core for the training step: a worker thread (blockWorker.ts) with its own tfjs backend scores and
// differentiates part of the batch's captions while the main thread does the rest (engine/chunkedScores.ts
// decides the split and places the calls so that the two overlap in the forward and in the backward pass).
//
// The training step runs synchronously inside tfjs' gradient machinery, so the main thread waits for the
// worker with Atomics.wait on a shared control word, and the worker writes its answers into
// SharedArrayBuffers the request carried (see blockWorker.ts).
import { Worker } from 'node:worker_threads';
import { VslError } from '../util/errors.js';
import { sharedFloat32, sharedInt32 } from './shared.js';
import { stage, type StageTotals } from './profile.js';
import type { ModelConfig } from '../model/config.js';
import type { RemoteBlock, RemoteGradients, RemoteInputs, RemoteScores } from './chunkedScores.js';
import { State, type BlockWorkerInit, type ProfileReply, type ToBlockWorker } from './blockWorker.js';

/** The longest a training step's half may take before the worker is presumed lost (it cannot be watched otherwise). */
const WAIT_LIMIT_MS = 6 * 3600 * 1000;

export class RemoteBlockWorker implements RemoteBlock {
  private fwd: RemoteScores | null = null;
  private bwd: RemoteGradients | null = null;
  private constructor(
    private readonly worker: Worker,
    private readonly control: Int32Array,
    private readonly errorText: Uint8Array,
  ) {}

  /** Start the worker and wait until its backend runs. Always close() it. */
  static async start(o: {
    backend: string;
    config: ModelConfig;
    chunkBytes: number;
    logLevel?: string;
  }): Promise<RemoteBlockWorker> {
    const control = sharedInt32(1);
    const errorText = new Uint8Array(new SharedArrayBuffer(8192));
    const init: BlockWorkerInit = {
      backend: o.backend,
      logLevel: o.logLevel ?? 'warn',
      config: o.config,
      chunkBytes: o.chunkBytes,
      control,
      errorText,
    };
    const worker = new Worker(new URL('./blockWorker.js', import.meta.url), { workerData: init });
    const remote = new RemoteBlockWorker(worker, control, errorText);
    // At start-up the main thread is free, so it waits asynchronously (and notices a worker that dies).
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number) => reject(new VslError(`training worker exited while starting (code ${code})`));
      worker.once('exit', onExit);
      worker.once('error', (e) => reject(new VslError(`training worker failed to start: ${e.message}`)));
      const poll = () => {
        const s = Atomics.load(control, 0);
        if (s === State.Busy) return void setTimeout(poll, 20);
        worker.off('exit', onExit);
        if (s === State.Error) reject(new VslError(`training worker: ${remote.error()}`));
        else resolve();
      };
      poll();
    }).catch(async (e) => {
      await worker.terminate();
      throw e;
    });
    return remote;
  }

  private error(): string {
    const end = this.errorText.indexOf(0);
    return new TextDecoder().decode(this.errorText.slice(0, end < 0 ? undefined : end));
  }

  private send(m: ToBlockWorker): void {
    Atomics.store(this.control, 0, State.Busy);
    this.worker.postMessage(m);
  }

  /** Block the (synchronous) training step until the worker answered. */
  private wait(what: string): void {
    stage('thread wait', () => this.waitFor(what));
  }

  private waitFor(what: string): void {
    const t0 = Date.now();
    while (Atomics.load(this.control, 0) === State.Busy) {
      if (Date.now() - t0 > WAIT_LIMIT_MS)
        throw new VslError(`training worker: no answer to the ${what} request after ${WAIT_LIMIT_MS / 3.6e6} h`);
      Atomics.wait(this.control, 0, State.Busy, 1000);
    }
    if (Atomics.load(this.control, 0) === State.Error) throw new VslError(`training worker (${what}): ${this.error()}`);
  }

  startForward(inputs: RemoteInputs): void {
    const nr = inputs.lengths.length;
    this.fwd = { sims: sharedFloat32(inputs.nImg * nr), safMean: sharedFloat32(nr), safVar: sharedFloat32(nr) };
    this.bwd = {
      regions: sharedFloat32(inputs.regions.length),
      vGlobal: sharedFloat32(inputs.vGlobal.length),
      words: sharedFloat32(inputs.words.length),
      tGlobal: sharedFloat32(inputs.tGlobal.length),
      params: inputs.params.map(([, , v]) => sharedFloat32(v.length)),
    };
    this.send({ type: 'forward', inputs, out: this.fwd });
  }

  scores(): RemoteScores {
    this.wait('forward');
    return this.fwd!;
  }

  startBackward(dS: Float32Array): void {
    if (dS.length !== this.fwd!.sims.length)
      throw new Error(`remote block: dS has ${dS.length} values, expected ${this.fwd!.sims.length}`);
    this.send({ type: 'backward', dS, out: this.bwd! });
  }

  gradients(): RemoteGradients {
    this.wait('backward');
    return this.bwd!;
  }

  /** Start (on) or stop the worker's profiler; stopping returns its stage totals. Call between steps only. */
  profile(on: boolean): Promise<StageTotals[]> {
    return new Promise((resolve) => {
      this.worker.once('message', (m: ProfileReply) => resolve(m.totals));
      this.worker.postMessage({ type: 'profile', on } satisfies ToBlockWorker);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
