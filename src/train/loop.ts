// `vsl train`: the reference's train.py as a resumable, observable loop. Epoch e runs at
// lr·0.1^floor(e/lr_update); each batch is one trainStep; validation at the end of every epoch and every
// val_step iterations; checkpoint_last.h5 after every epoch (and on SIGINT/SIGTERM), model_best.h5 on a
// new best rsum. Everything a resumed run needs (weights, Adam state, epoch, position) is in the checkpoint;
// the data order and dropout masks derive from (seed, epoch, iteration), so a resume replays them exactly.
import fs from 'node:fs';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { activeBackend } from '../ops/backend.js';
import { defaultWorkers } from '../runtime/scorePool.js';
import { startStepEngine } from '../runtime/startStepEngine.js';
import { encodeCaption } from '../data/vocab.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { mixSeed } from '../util/rng.js';
import type { EvalResult } from '../eval/metrics.js';
import { TrainData } from './batches.js';
import type { TrainOptions } from './options.js';
import { NonFiniteLossError, trainStep } from './step.js';
import { trainProgress } from './progress.js';
import { onnxDefaultWorkers, engineLine, resolveEngine } from '../runtime/engine.js';
import { cores, defaultValThreads, loggedValidation, validate, weightsDigest } from './validate.js';
import { initOrResume, keepAsBest, openRun, runOptions, StopOnSignal, writeCheckpoint } from './run.js';
import { refreshRunReport } from '../report/runReport.js';
import { EpochLog, logValidation, type EpochPlan } from './stepLog.js';

export interface TrainSummary {
  runDir: string;
  epochs: number;
  iterations: number;
  bestRsum: number;
  last: EvalResult | null;
  stoppedBySignal: NodeJS.Signals | null;
}

/** The learning rate and the loss terms of epoch `epoch` (the warm-up options switch terms on late). */
function planEpoch(o: TrainOptions, epoch: number, steps: number): EpochPlan {
  return {
    epoch,
    steps,
    lr: o.learningRate * 0.1 ** Math.floor(epoch / o.lrUpdate),
    maxViolation: o.maxViolation && epoch >= o.warmupSumEpochs,
    // the soft-rank term's gradient is largest on near-tied scores, i.e. on the constant-score plateau
    semanticLoss: epoch >= o.semanticWarmupEpochs ? o.semanticLoss : 'none',
  };
}

export async function train(o: TrainOptions): Promise<TrainSummary> {
  const run = await openRun(o);
  const s = await initOrResume(o, run);
  const { reg, adam } = s;
  log().info(
    {
      params: reg.count(),
      module: run.config.module,
      vocab: run.vocab.size,
      train: run.train.nCaptions,
      dev: run.dev.nCaptions,
    },
    'model ready',
  );
  const data = new TrainData(run.train, run.vocab, o.semanticLoss);
  const devTokens = run.dev.captions.map((c) => encodeCaption(run.vocab, c));
  const progress = trainProgress(); // stderr while the epochs run: a bar on a TTY, else the log_step lines
  const stop = new StopOnSignal(run.dir, () => progress.stop());
  const backend = activeBackend()!.name;
  let last: EvalResult | null = null;
  // A validation already in metrics.jsonl for the same weights (a run resumed from a checkpoint older than its
  // last validations retrains to the same weights) is taken from there, not computed and logged again.
  const valEngine = await resolveEngine(o.valEngine, run.config.module, '--val-engine');
  log().info(`validation ${engineLine(valEngine, undefined, backend)}`);
  const runValidation = async (epoch: number, where: string): Promise<EvalResult> => {
    const t0 = performance.now();
    const weights = await weightsDigest(reg);
    const at = { epoch, iteration: s.iteration, where, weights };
    const logged = fs.existsSync(run.metricsFile)
      ? loggedValidation(fs.readFileSync(run.metricsFile, 'utf8'), at)
      : null;
    if (logged) {
      run.runLog.info(
        { epoch, iteration: s.iteration, where, rsum: logged.rsum },
        'validation already logged: not redone',
      );
      log().info(
        { epoch, iteration: s.iteration, where, rsum: logged.rsum },
        `epoch ${epoch} ${where}: validation of these weights already in ${run.metricsFile} (rsum ${logged.rsum.toFixed(1)}): not redone`,
      );
      last = logged;
      return logged;
    }
    const threads =
      o.valWorkers ??
      (valEngine.name === 'onnx' ? onnxDefaultWorkers(run.dev.nImages * run.dev.nCaptions) : undefined) ??
      defaultValThreads({
        backend,
        config: run.config,
        pairs: run.dev.nImages * run.dev.nCaptions,
        rssBytes: process.memoryUsage.rss(),
        freeBytes: os.freemem(),
        cores: cores(),
      });
    const result = await validate(reg, run.config, run.dev, devTokens, { threads, backend, engine: valEngine });
    last = result;
    logValidation(run.runLog, run.metricsFile, { ...at, seconds: (performance.now() - t0) / 1000, threads }, result);
    await refreshRunReport(run.dir);
    return result;
  };

  // A second core for the score block (the single-threaded wasm/cpu backends); the native ones use every core.
  const threads = o.workers ?? defaultWorkers(backend);
  const chunkBytes = o.chunkMb * 2 ** 20;
  const { engine, close: closeEngine } = await startStepEngine({ threads, backend, config: run.config, chunkBytes });
  log().info({ threads }, `training step on ${threads} thread${threads > 1 ? 's' : ''}`);
  const record = {
    backend,
    // why the backends before it were skipped (the terminal's backend line names them only)
    backendsSkipped: activeBackend()!.skipped.map((k) => `${k.name}: ${k.why}`),
    ...(activeBackend()!.products ? { products: activeBackend()!.products } : {}),
    threads,
    valEngine: valEngine.name,
    ...(valEngine.fallback ? { valEngineFallback: valEngine.fallback } : {}),
    train: run.train.nCaptions,
    dev: run.dev.nCaptions,
    options: runOptions(o, run),
  };
  run.runLog.info(record, 'run');
  try {
    for (let epoch = s.epoch; epoch < o.numEpochs; epoch++) {
      const batches = data.batchesOf(data.epochOrder(o.seed, epoch), o.batchSize);
      const plan = planEpoch(o, epoch, batches.length);
      adam.lr = plan.lr;
      const epochLog = new EpochLog(plan, run.runLog, progress, o.logStep);
      const first = epoch === s.epoch ? s.step : 0;
      let pending = first < batches.length ? data.readImages(batches[first]) : null;
      progress.begin(epoch, batches.length, first);
      for (let step = first; step < batches.length; step++) {
        const t0 = performance.now();
        const batch = data.assemble(batches[step], await pending!, plan.semanticLoss);
        pending = step + 1 < batches.length ? data.readImages(batches[step + 1]) : null; // prefetch
        const t1 = performance.now();
        let r;
        try {
          r = trainStep(reg, run.config, adam, batch, {
            margin: o.margin,
            maxViolation: plan.maxViolation,
            semantic: plan.semanticLoss,
            gradClip: o.gradClip,
            dropout: o.dropout,
            engine,
            seed: mixSeed(o.seed, s.iteration, 0xd409),
          });
        } catch (e) {
          if (e instanceof NonFiniteLossError)
            throw new VslError(
              `epoch ${epoch}, step ${step}: ${e.message}; the last good checkpoint in ${run.dir} is kept`,
              4,
            );
          throw e;
        }
        s.iteration += 1;
        epochLog.step(step, s.iteration, r, (performance.now() - t0) / 1000, (t1 - t0) / 1000);
        if (stop.requested) {
          await pending?.catch(() => undefined);
          const file = await writeCheckpoint(o, run, s, 'checkpoint_last.h5', epoch, step + 1);
          progress.stop(); // the signal took it down already; a validation's resume() may have redrawn it
          process.stderr.write(
            `vsl: stopped by ${stop.requested} after epoch ${epoch} step ${step + 1}; resume with: vsl train --resume ${file} (and the same options)\n`,
          );
          return {
            runDir: run.dir,
            epochs: epoch,
            iterations: s.iteration,
            bestRsum: s.bestRsum,
            last,
            stoppedBySignal: stop.requested,
          };
        }
        if (s.iteration % o.valStep === 0) {
          progress.stop(); // validation blocks for a while and logs its result line
          await runValidation(epoch, `iteration ${s.iteration}`);
          progress.resume();
        }
      }
      run.runLog.info({ epoch, ...epochLog.summary() }, 'epoch');
      progress.stop();
      const r = await runValidation(epoch, 'end of epoch');
      const isBest = r.rsum > s.bestRsum;
      s.bestRsum = Math.max(s.bestRsum, r.rsum);
      await writeCheckpoint(o, run, s, 'checkpoint_last.h5', epoch + 1, 0);
      if (isBest) keepAsBest(run);
    }
  } finally {
    progress.stop(); // an error: the error line must start on a line of its own, and the bar's timer must end
    stop.dispose();
    run.close();
    await closeEngine();
  }
  const summary = {
    runDir: run.dir,
    epochs: o.numEpochs,
    iterations: s.iteration,
    bestRsum: s.bestRsum,
    last,
    stoppedBySignal: null,
  };
  reg.dispose();
  adam.dispose();
  tf.disposeVariables();
  return summary;
}
