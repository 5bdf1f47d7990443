// `vsl train`: the reference's train.py (SPEC §6) as a resumable, observable loop. Epoch e runs at
// lr·0.1^floor(e/lr_update); each batch is one trainStep; validation at the end of every epoch and every
// val_step iterations; checkpoint_last.h5 after every epoch (and on SIGINT/SIGTERM), model_best.h5 on a
// new best rsum. Everything a resumed run needs (weights, Adam state, epoch, position) is in the checkpoint;
// the data order and dropout masks derive from (seed, epoch, iteration), so a resume replays them exactly.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import pino from 'pino';
import { activeBackend, selectBackend, type BackendChoice } from '../backend.js';
import { defaultWorkers } from '../eval/parallel.js';
import { RemoteBlockWorker } from './remoteBlock.js';
import { openSplit } from '../data/precomp.js';
import { loadVocab } from '../data/vocab.js';
import { encodeCaption } from '../data/tokenizer.js';
import { ParamRegistry } from '../model/params.js';
import { loadCheckpoint, saveCheckpoint, type ArrayRecord } from '../io/checkpoint.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { Adam } from './adam.js';
import { TrainData, mixSeed } from './batches.js';
import { modelConfigOf, type TrainOptions } from './options.js';
import { NonFiniteLossError, trainStep } from './step.js';
import { trainProgress } from './progress.js';
import { validate } from './validate.js';
import { refreshRunReport } from '../report/runReport.js';
import type { EvalResult } from '../eval/metrics.js';
import { Rng } from '../util/rng.js';

export interface TrainSummary {
  runDir: string;
  epochs: number;
  iterations: number;
  bestRsum: number;
  last: EvalResult | null;
  stoppedBySignal: NodeJS.Signals | null;
}

class Meter {
  sum = 0;
  n = 0;
  val = 0;
  add(v: number) {
    this.val = v;
    this.sum += v;
    this.n += 1;
  }
  get avg() {
    return this.n ? this.sum / this.n : 0;
  }
}

// mkdir -p one level at a time: Node 20's fs.mkdirSync(dir, { recursive: true }) never returns when the kernel
// answers ENOENT for a parent that exists (e.g. --model-name /proc/x loops forever); plain mkdirSync throws.
function mkdirs(dir: string): void {
  if (fs.existsSync(dir)) return;
  const parent = path.dirname(dir);
  if (parent !== dir) mkdirs(parent);
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

function ensureWritableDir(dir: string): void {
  try {
    mkdirs(dir); // was fs.mkdirSync(dir, { recursive: true }), which hangs on /proc (see mkdirs)
    const probe = path.join(dir, `.write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (e) {
    throw new VslError(`${dir}: run directory (--model-name) is not writable: ${(e as Error).message}`);
  }
}

export async function train(o: TrainOptions): Promise<TrainSummary> {
  const runDir = o.modelName;
  ensureWritableDir(runDir);
  await selectBackend(o.backend as BackendChoice);
  const vocabFile = path.join(o.vocabPath ?? o.dataPath, `${o.dataName}_vocab.json`);
  const vocab = loadVocab(vocabFile);
  const trainSplit = openSplit(o.dataPath, o.dataName, 'train', { imgDim: o.imgDim });
  const dev = openSplit(o.dataPath, o.dataName, 'dev', { imgDim: o.imgDim, maxCaptions: o.maxDevCaptions });
  const config = modelConfigOf(o, vocab.size);
  const runLog = pino({ base: undefined }, pino.destination({ dest: path.join(runDir, 'train.log'), sync: true }));
  const metricsFile = path.join(runDir, 'metrics.jsonl');

  let reg: ParamRegistry;
  const adam = new Adam(o.learningRate);
  let startEpoch = 0;
  let startStep = 0;
  let globalIter = 0;
  let bestRsum = 0;
  if (o.resume) {
    const ck = await loadCheckpoint(o.resume);
    reg = ParamRegistry.fromArrays(config, ck.weights, o.resume);
    if (ck.optimizer) {
      adam.importState(reg, {
        step: ck.optimizer.step,
        m: new Map([...ck.optimizer.m].map(([k, a]) => [k, a.data as Float32Array])),
        v: new Map([...ck.optimizer.v].map(([k, a]) => [k, a.data as Float32Array])),
      });
    }
    const order = (ck.dataOrder ?? {}) as { epoch?: number; step?: number };
    startEpoch = order.epoch ?? ck.epoch;
    startStep = order.step ?? 0;
    globalIter = ck.iteration;
    bestRsum = ck.bestRsum;
    log().info(
      { resume: o.resume, epoch: startEpoch, step: startStep, iteration: globalIter },
      `resuming from ${o.resume}`,
    );
  } else {
    reg = ParamRegistry.init(config, mixSeed(o.seed, 0x1417));
  }
  log().info(
    { params: reg.count(), module: config.module, vocab: vocab.size, train: trainSplit.nCaptions, dev: dev.nCaptions },
    'model ready',
  );
  const data = new TrainData(trainSplit, vocab, o.semanticLoss);
  const devTokens = dev.captions.map((c) => encodeCaption(vocab, c));

  // stderr while the epochs run: a bar on a TTY, else the log_step lines (train.log is written below either way)
  const progress = trainProgress();
  let stopSignal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    progress.stop(); // before the warning below, and before a second signal's exit leaves a half-drawn bar
    if (stopSignal) process.exit(sig === 'SIGINT' ? 130 : 143); // a second signal: stop now
    stopSignal = sig;
    log().warn(`${sig}: finishing the current step, then writing ${path.join(runDir, 'checkpoint_last.h5')}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const options = {
    model: config,
    data: { dataName: o.dataName, dataPath: o.dataPath, vocabPath: o.vocabPath ?? o.dataPath },
    train: o,
  };
  const save = async (file: string, epoch: number, step: number) => {
    const weights = (await reg.toArrays()) as Map<string, ArrayRecord>;
    const st = await adam.exportState();
    const shapeOf = (k: string) => [...reg.get(k).shape];
    await saveCheckpoint(path.join(runDir, file), {
      weights,
      options,
      epoch,
      iteration: globalIter,
      bestRsum,
      optimizer: {
        step: st.step,
        m: new Map([...st.m].map(([k, d]) => [k, { shape: shapeOf(k), data: d }])),
        v: new Map([...st.v].map(([k, d]) => [k, { shape: shapeOf(k), data: d }])),
      },
      dataOrder: { seed: o.seed, epoch, step },
    });
  };
  let last: EvalResult | null = null;
  const runValidation = async (epoch: number, where: string) => {
    const t0 = performance.now();
    const r = validate(reg, config, dev, devTokens);
    last = r;
    const record = {
      epoch,
      iteration: globalIter,
      where,
      i2t: r.i2t,
      t2i: r.t2i,
      rsum: r.rsum,
      seconds: (performance.now() - t0) / 1000,
    };
    fs.appendFileSync(metricsFile, JSON.stringify(record) + '\n');
    runLog.info(record, 'validation');
    await refreshRunReport(runDir);
    log().info(
      `epoch ${epoch} ${where}: i2t R@1/5/10 ${r.i2t.r1.toFixed(1)}/${r.i2t.r5.toFixed(1)}/${r.i2t.r10.toFixed(1)}  ` +
        `t2i ${r.t2i.r1.toFixed(1)}/${r.t2i.r5.toFixed(1)}/${r.t2i.r10.toFixed(1)}  rsum ${r.rsum.toFixed(1)}`,
    );
    return r;
  };

  // A second core for the score block (the single-threaded wasm/cpu backends); the native ones use every core.
  const backendName = activeBackend()!.name;
  const threads = o.workers ?? defaultWorkers(backendName);
  const remote =
    threads >= 2
      ? await RemoteBlockWorker.start({ backend: backendName, config, chunkBytes: o.chunkMb * 2 ** 20 })
      : undefined;
  log().info({ threads }, `training step on ${threads} thread${threads > 1 ? 's' : ''}`);
  runLog.info({ backend: backendName, threads, train: trainSplit.nCaptions, dev: dev.nCaptions, options }, 'run');
  try {
    for (let epoch = startEpoch; epoch < o.numEpochs; epoch++) {
      adam.lr = o.learningRate * 0.1 ** Math.floor(epoch / o.lrUpdate);
      const maxViolation = o.maxViolation && epoch >= o.warmupSumEpochs;
      // the soft-rank term's gradient is largest on near-tied scores, i.e. on the constant-score plateau
      const semantic = epoch >= o.semanticWarmupEpochs ? o.semanticLoss : 'none';
      const batches = data.batchesOf(data.epochOrder(o.seed, epoch), o.batchSize);
      const meters = {
        loss: new Meter(),
        hinge: new Meter(),
        semantic: new Meter(),
        batch: new Meter(),
        data: new Meter(),
      };
      const first = epoch === startEpoch ? startStep : 0;
      let pending = first < batches.length ? data.readImages(batches[first]) : null;
      progress.begin(epoch, batches.length, first);
      for (let step = first; step < batches.length; step++) {
        const t0 = performance.now();
        const images = await pending!;
        const batch = data.assemble(batches[step], images, semantic);
        pending = step + 1 < batches.length ? data.readImages(batches[step + 1]) : null; // prefetch
        const t1 = performance.now();
        const dropoutRng = new Rng(mixSeed(o.seed, globalIter, 0xd409));
        let r;
        try {
          r = trainStep(reg, config, adam, batch, {
            margin: o.margin,
            maxViolation,
            semantic,
            gradClip: o.gradClip,
            dropout: o.dropout,
            chunkBytes: o.chunkMb * 2 ** 20,
            remote,
            seed: () => dropoutRng.seed(),
          });
        } catch (e) {
          if (e instanceof NonFiniteLossError) {
            throw new VslError(
              `epoch ${epoch}, step ${step}: ${e.message}; the last good checkpoint in ${runDir} is kept`,
              4,
            );
          }
          throw e;
        }
        globalIter += 1;
        const t2 = performance.now();
        meters.loss.add(r.total);
        meters.hinge.add(r.hinge);
        meters.semantic.add(r.semantic);
        meters.batch.add((t2 - t0) / 1000);
        meters.data.add((t1 - t0) / 1000);
        const logNow = globalIter % o.logStep === 0 || step === batches.length - 1;
        if (logNow) {
          const rec = {
            epoch,
            step,
            steps: batches.length,
            iteration: globalIter,
            lr: adam.lr,
            maxViolation,
            semanticLoss: semantic,
            loss: r.total,
            lossAvg: meters.loss.avg,
            hinge: r.hinge,
            hingeAvg: meters.hinge.avg,
            semantic: r.semantic,
            semanticAvg: meters.semantic.avg,
            gradNorm: r.gradNorm,
            batchTime: meters.batch.val,
            dataTime: meters.data.val,
          };
          runLog.info(rec, 'step');
        }
        progress.step(
          {
            epoch,
            step,
            steps: batches.length,
            loss: r.total,
            lossAvg: meters.loss.avg,
            hinge: r.hinge,
            semantic: r.semantic,
            lr: adam.lr,
            secondsPerStep: meters.batch.val,
            etaSeconds: meters.batch.avg * (batches.length - step - 1),
          },
          logNow,
        );
        if (stopSignal) {
          await pending?.catch(() => undefined);
          await save('checkpoint_last.h5', epoch, step + 1);
          const file = path.join(runDir, 'checkpoint_last.h5');
          progress.stop(); // onSignal took it down already; a validation's resume() may have redrawn it
          process.stderr.write(
            `vsl: stopped by ${stopSignal} after epoch ${epoch} step ${step + 1}; resume with: vsl train --resume ${file} (and the same options)\n`,
          );
          return { runDir, epochs: epoch, iterations: globalIter, bestRsum, last, stoppedBySignal: stopSignal };
        }
        if (globalIter % o.valStep === 0) {
          progress.stop(); // validation blocks for a while and logs its result line
          await runValidation(epoch, `iteration ${globalIter}`);
          progress.resume();
        }
      }
      runLog.info({ epoch, steps: meters.batch.n, seconds: meters.batch.sum, dataSeconds: meters.data.sum }, 'epoch');
      progress.stop();
      const r = await runValidation(epoch, 'end of epoch');
      const isBest = r.rsum > bestRsum;
      bestRsum = Math.max(bestRsum, r.rsum);
      await save('checkpoint_last.h5', epoch + 1, 0);
      if (isBest) fs.copyFileSync(path.join(runDir, 'checkpoint_last.h5'), path.join(runDir, 'model_best.h5.tmp'));
      if (isBest) fs.renameSync(path.join(runDir, 'model_best.h5.tmp'), path.join(runDir, 'model_best.h5'));
    }
  } finally {
    progress.stop(); // an error: the error line must start on a line of its own, and the bar's timer must end
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    trainSplit.close();
    dev.close();
    await remote?.close();
    runLog.flush();
  }
  const summary = { runDir, epochs: o.numEpochs, iterations: globalIter, bestRsum, last, stoppedBySignal: null };
  reg.dispose();
  adam.dispose();
  tf.disposeVariables();
  return summary;
}
