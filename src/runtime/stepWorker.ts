// The training worker thread (stepProtocol.ts has the exchange): on its own tfjs backend instance it encodes the
// last captions of the batch (its share, from h on) and scores them against every image, forward and backward,
// while the main thread does the images and the other captions.
//
// One step is one synchronous run of `step` on this thread. Its caption encoder is recorded on one tape; the
// scores of its share on a second, isolated one (ops/tape.ts), differentiated as soon as dLoss/dScores arrive, so
// that the image side's gradients go back to the main thread before this thread differentiates its captions.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type * as TF from '@tensorflow/tfjs';
import {
  MainPhase,
  mainPhaseOf,
  splitFlat,
  WorkerPhase,
  type StepRequest,
  type StepWorkerInit,
  type ToStepWorker,
} from './stepProtocol.js';

/** The main thread gave up on this step (it failed there): nothing to report. */
class Aborted extends Error {}

async function run(): Promise<void> {
  const init = workerData as StepWorkerInit;
  const port = parentPort!;
  const control = init.control;
  const publish = (p: WorkerPhase) => {
    Atomics.store(control, 0, p);
    Atomics.notify(control, 0);
  };
  const fail = (error: unknown) => {
    const e = error instanceof Error ? error : new Error(String(error));
    const text = new TextEncoder().encode(e.name === 'VslError' ? e.message : (e.stack ?? e.message));
    init.errorText.fill(0);
    init.errorText.set(text.subarray(0, init.errorText.length));
    publish(WorkerPhase.Error);
  };
  try {
    // Imported here, not at the top: a failing import is reported through the control word too.
    const { setLogLevel } = await import('../util/log.js');
    setLogLevel(init.logLevel);
    const { selectBackend } = await import('../ops/backend.js');
    await selectBackend(init.backend as Parameters<typeof selectBackend>[0]);
    const tf = await import('@tensorflow/tfjs');
    const { captionSide } = await import('../model/sgraf.js');
    const { captionShare, trainMode } = await import('../model/encoders.js');
    const { Weights } = await import('../model/weights.js');
    const { chunkedScores } = await import('./chunkedScores.js');
    const { isolatedGradients, valueAndGradients } = await import('../ops/tape.js');
    const profile = await import('../ops/profile.js');
    type CaptionBnStats = { mean: TF.Tensor1D; varUnbiased: TF.Tensor1D };

    /** Block until the main thread's phase reaches `p`. */
    const waitMain = (p: MainPhase) =>
      profile.stage('thread wait', () => {
        for (;;) {
          const v = mainPhaseOf(control);
          if (v === MainPhase.Abort) throw new Aborted();
          if (v >= p) return;
          Atomics.wait(control, 1, v, 1000);
        }
      });
    const { copyInto } = await import('../ops/shared.js');
    const flat = (ts: TF.Tensor[], out: Float32Array) => {
      let o = 0;
      for (const t of ts) o = copyInto(t, out, o);
    };

    const step = (r: StepRequest) => {
      const { buf, lengths, nImg, K, h } = r;
      const c = init.config;
      const D = c.embedSize;
      const B = lengths.length;
      const tensorsOf = (values: Float32Array, names: [string, number[]][]) =>
        splitFlat(
          values,
          names.map(([, s]) => s),
        ).map((v, i) => tf.tensor(v, names[i][1]));
      const captionParams = tensorsOf(buf.captionParams, r.captionNames);
      const blockParams = tensorsOf(buf.blockParams, r.blockNames);
      const blockByName = new Map(r.blockNames.map(([n], i) => [n, blockParams[i]]));
      // captions [h, B), with their rows of the whole batch's dropout masks
      const share = captionShare({ ids: buf.ids, lengths, maxLen: lengths[0] }, trainMode(r.stepSeed, r.dropout), h, B);
      const held: TF.Tensor[] = [...captionParams, ...blockParams];
      let w: InstanceType<typeof Weights> | undefined;
      try {
        const { value, grads } = valueAndGradients((...cp) => {
          const byName = new Map(r.captionNames.map(([n], i) => [n, cp[i]]));
          w = new Weights((n) => {
            const t = byName.get(n) ?? blockByName.get(n);
            if (!t) throw new Error(`training worker: parameter ${n} was not sent`);
            return t;
          });
          const cap = captionSide(w, c, share.tokens, share.mode);

          waitMain(MainPhase.Regions);
          const regions = tf.tensor3d(buf.regions, [nImg, K, D]);
          const vGlobal = tf.tensor2d(buf.vGlobal, [nImg, D]);
          const a = isolatedGradients(
            (rg, vg, wd, tg, ...bp) => {
              const captionStats: CaptionBnStats[] = [];
              const sims = chunkedScores(
                c,
                { regions: rg as TF.Tensor3D, vGlobal: vg as TF.Tensor2D },
                { words: wd as TF.Tensor3D, tGlobal: tg as TF.Tensor2D, lengths: cap.lengths },
                new Map(r.blockNames.map(([n], i) => [n, bp[i]])),
                { chunkBytes: init.chunkBytes, captionStats },
              );
              profile.stage('thread handover', () => {
                copyInto(sims, buf.sims);
                if (captionStats.length) {
                  flat(
                    captionStats.map((s) => s.mean),
                    buf.capBnMean,
                  );
                  flat(
                    captionStats.map((s) => s.varUnbiased),
                    buf.capBnVar,
                  );
                  tf.dispose(captionStats.flatMap((s) => [s.mean, s.varUnbiased]));
                }
              });
              publish(WorkerPhase.Scores);
              waitMain(MainPhase.DS);
              return tf.sum(tf.mul(sims, tf.tensor2d(buf.dS, [nImg, B - h])));
            },
            [regions, vGlobal, cap.words, cap.tGlobal, ...blockParams],
          );
          const [dr, dv, dw, dt, ...db] = a.grads;
          profile.stage('thread handover', () => {
            copyInto(dr, buf.dRegions);
            copyInto(dv, buf.dVGlobal);
            flat(db, buf.dBlockParams);
          });
          tf.dispose([a.value, dr, dv, ...db, regions, vGlobal]);
          publish(WorkerPhase.ShareGrads);
          // its captions' encoder, differentiated given dLoss/d(words, TextSA vectors) of the share
          return tf.add(tf.sum(tf.mul(cap.words, dw)), tf.sum(tf.mul(cap.tGlobal, dt)));
        }, captionParams);
        profile.stage('thread handover', () => flat(grads, buf.dCaptionParams));
        tf.dispose([value, ...grads]);
        publish(WorkerPhase.CaptionGrads);
      } finally {
        w?.dispose();
        tf.dispose(held);
      }
    };

    port.on('message', (m: ToStepWorker) => {
      if (m.type === 'profile') {
        if (m.on) profile.startProfiling();
        port.postMessage({ type: 'profile', totals: m.on ? [] : profile.stopProfiling() });
        return;
      }
      try {
        step(m);
      } catch (e) {
        if (e instanceof Aborted) publish(WorkerPhase.Ready);
        else fail(e);
      }
    });
    publish(WorkerPhase.Ready);
  } catch (e) {
    fail(e);
  }
}

if (!isMainThread && parentPort) void run();
