// The main thread's side of the training worker (stepWorker.ts; the exchange is in stepProtocol.ts): start it,
// hand it a step, wait for its phases (Atomics.wait: the step is synchronous here), signal ours, stop it.
import { Worker } from 'node:worker_threads';
import { VslError } from '../util/errors.js';
import type { ModelConfig } from '../model/config.js';
import { sharedInt32 } from '../ops/shared.js';
import { stage, type StageTotals } from '../ops/profile.js';
import {
  MainPhase,
  WorkerPhase,
  workerPhaseOf,
  type StepRequest,
  type StepWorkerInit,
  type ToStepWorker,
} from './stepProtocol.js';

/** The longest a phase of the worker may take before it is presumed lost (it cannot be watched otherwise). */
const WAIT_LIMIT_MS = 6 * 3600 * 1000;

export class StepPartner {
  /** The last step was aborted: the worker may still be in it until it sees the abort. */
  private aborted = false;

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
  }): Promise<StepPartner> {
    const control = sharedInt32(2);
    const errorText = new Uint8Array(new SharedArrayBuffer(8192));
    const init: StepWorkerInit = {
      backend: o.backend,
      logLevel: o.logLevel ?? 'warn',
      config: o.config,
      chunkBytes: o.chunkBytes,
      control,
      errorText,
    };
    const worker = new Worker(new URL('./stepWorker.js', import.meta.url), { workerData: init });
    const partner = new StepPartner(worker, control, errorText);
    // At start-up the main thread is free, so it waits asynchronously (and notices a worker that dies).
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number) => reject(new VslError(`training worker exited while starting (code ${code})`));
      worker.once('exit', onExit);
      worker.once('error', (e) => reject(new VslError(`training worker failed to start: ${e.message}`)));
      const poll = () => {
        const s = workerPhaseOf(control);
        if (s === WorkerPhase.Idle) return void setTimeout(poll, 20);
        worker.off('exit', onExit);
        if (s === WorkerPhase.Error) reject(new VslError(`training worker: ${partner.error()}`));
        else resolve();
      };
      poll();
    }).catch(async (e) => {
      await worker.terminate();
      throw e;
    });
    return partner;
  }

  private error(): string {
    const end = this.errorText.indexOf(0);
    return new TextDecoder().decode(this.errorText.slice(0, end < 0 ? undefined : end));
  }

  /** Hand the worker a step (it starts on its captions at once). */
  begin(r: StepRequest): void {
    if (this.aborted) this.settle();
    Atomics.store(this.control, 0, WorkerPhase.Idle);
    Atomics.store(this.control, 1, MainPhase.None);
    this.worker.postMessage(r satisfies ToStepWorker);
  }

  /** Block until the worker's phase reaches `p` (what: for the error message). */
  waitFor(p: WorkerPhase, what: string): void {
    stage('thread wait', () => {
      const t0 = Date.now();
      for (;;) {
        const v = workerPhaseOf(this.control);
        if (v === WorkerPhase.Error) throw new VslError(`training worker (${what}): ${this.error()}`);
        if (v >= p && v !== WorkerPhase.Ready) return;
        if (Date.now() - t0 > WAIT_LIMIT_MS)
          throw new VslError(`training worker: no ${what} after ${WAIT_LIMIT_MS / 3.6e6} h`);
        Atomics.wait(this.control, 0, v, 1000);
      }
    });
  }

  /**
   * Wait until the worker has left an aborted step (dropped it, or finished or failed it first) before the phase
   * words are reset for the next: a reset that it read before the abort would leave it waiting in the old step.
   */
  private settle(): void {
    stage('thread wait', () => {
      const t0 = Date.now();
      for (;;) {
        const v = workerPhaseOf(this.control);
        if (v === WorkerPhase.Ready || v === WorkerPhase.CaptionGrads || v === WorkerPhase.Error) break;
        if (Date.now() - t0 > WAIT_LIMIT_MS)
          throw new VslError(`training worker: still in an aborted step after ${WAIT_LIMIT_MS / 3.6e6} h`);
        Atomics.wait(this.control, 0, v, 1000);
      }
    });
    this.aborted = false;
  }

  /** Move the main thread's phase to `p` (the buffers of that phase are written). */
  signal(p: MainPhase): void {
    Atomics.store(this.control, 1, p);
    Atomics.notify(this.control, 1);
  }

  /** The main thread's half of the step failed: the worker stops waiting and drops the step. */
  abort(): void {
    this.signal(MainPhase.Abort);
    this.aborted = true;
  }

  /** Start (on) or stop the worker's profiler; stopping returns its stage totals. Call between steps only. */
  profile(on: boolean): Promise<StageTotals[]> {
    return new Promise((resolve) => {
      this.worker.once('message', (m: { totals: StageTotals[] }) => resolve(m.totals));
      this.worker.postMessage({ type: 'profile', on } satisfies ToStepWorker);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
