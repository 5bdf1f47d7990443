// The parts of a training run around its loop: open the run (directory, backend, vocabulary, splits, logs),
// initialise or resume the model and optimizer, write checkpoints, and stop cleanly on SIGINT / SIGTERM.
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { selectBackend, type BackendChoice } from '../ops/backend.js';
import { openSplit, type PrecompSplit } from '../data/precomp.js';
import { loadVocab, type Vocab } from '../data/vocab.js';
import type { ModelConfig } from '../model/config.js';
import { ParamRegistry } from '../model/params.js';
import { loadCheckpoint, saveCheckpoint, type ArrayRecord } from '../io/checkpoint.js';
import { detectModelFormat } from '../eval/loadModel.js';
import { fileError, VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { Adam } from './adam.js';
import { mixSeed } from '../util/rng.js';
import { mkdirs, tempNameFor } from '../util/atomicFile.js';
import { modelConfigOf, type TrainOptions } from './options.js';
import { checkWeightsFit, unshapedDifferences, weightsFromFile } from './weightsFile.js';

function ensureWritableDir(dir: string): void {
  try {
    mkdirs(dir);
    const probe = path.join(dir, `.write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (e) {
    throw new VslError(`${dir}: run directory (--model-name) is not writable: ${(e as Error).message}`);
  }
}

/** What a run reads and writes, opened once. */
export interface Run {
  dir: string;
  vocab: Vocab;
  vocabFile: string;
  train: PrecompSplit;
  dev: PrecompSplit;
  config: ModelConfig;
  /** train.log: pino JSON lines, whatever stderr shows */
  runLog: pino.Logger;
  metricsFile: string;
  close(): void;
}

export async function openRun(o: TrainOptions): Promise<Run> {
  const dir = o.modelName;
  ensureWritableDir(dir);
  await selectBackend(o.backend as BackendChoice);
  const vocabFile = path.join(o.vocabPath ?? o.dataPath, `${o.dataName}_vocab.json`);
  const vocab = loadVocab(vocabFile);
  const train = openSplit(o.dataPath, o.dataName, 'train', { imgDim: o.imgDim });
  const dev = openSplit(o.dataPath, o.dataName, 'dev', { imgDim: o.imgDim, maxCaptions: o.maxDevCaptions });
  const runLog = pino({ base: undefined }, pino.destination({ dest: path.join(dir, 'train.log'), sync: true }));
  return {
    dir,
    vocab,
    vocabFile,
    train,
    dev,
    config: modelConfigOf(o, vocab.size),
    runLog,
    metricsFile: path.join(dir, 'metrics.jsonl'),
    close() {
      train.close();
      dev.close();
      runLog.flush();
    },
  };
}

/** The model, its optimizer and where the run stands. */
export interface TrainState {
  reg: ParamRegistry;
  adam: Adam;
  /** the epoch and the step within it to start from */
  epoch: number;
  step: number;
  /** iterations done before this process (the reference's Eiters) */
  iteration: number;
  bestRsum: number;
}

const NO_ADAM =
  "the checkpoint holds no optimizer state (the reference saves none); Adam restarts from zero moments (step 0), as a resumed run of the reference's lineage (SCAN's --resume) does";

/**
 * Where a run starts: a fresh model (seeded); the weights of a file with a fresh optimizer at epoch 0
 * (--init-from); or a checkpoint to continue (--resume): a vsl checkpoint holds everything (weights, Adam's
 * state, epoch and step, best rsum), a reference checkpoint (`checkpoint_N.pth.tar`, `model_best.pth.tar`) the
 * weights, epoch, Eiters and best rsum but no optimizer state, so Adam starts again from zero moments.
 */
export async function initOrResume(o: TrainOptions, run: Run): Promise<TrainState> {
  const { config } = run;
  const adam = new Adam(o.learningRate);
  if (o.initFrom && o.resume)
    throw new VslError(
      `--init-from ${o.initFrom} and --resume ${o.resume}: expected one of them (--init-from starts a new run from the weights, --resume continues a run)`,
    );
  if (o.resume && detectModelFormat(o.resume) === 'hdf5') return resumeVsl(o, run, adam);
  const from = o.initFrom ?? o.resume;
  if (!from)
    return {
      reg: ParamRegistry.init(config, mixSeed(o.seed, 0x1417)),
      adam,
      epoch: 0,
      step: 0,
      iteration: 0,
      bestRsum: 0,
    };
  const { reg, file, keys } = await weightsFromFile(from, config, run.vocabFile);
  const unshaped = unshapedDifferences(file, config);
  if (unshaped.length)
    log().warn(`${from}: the file's options differ from this run's in ${unshaped.join(', ')}; this run's are used`);
  // stderr says which file and how many tensors; train.log keeps the list of keys
  const record = { file: from, format: file.source, tensors: keys.length, params: reg.count() };
  if (o.initFrom) {
    log().info(
      record,
      `initialised from ${from} (${file.source}): ${keys.length} tensors (weights and BatchNorm buffers); Adam starts fresh at epoch 0`,
    );
    run.runLog.info({ ...record, keys }, 'init-from');
    return { reg, adam, epoch: 0, step: 0, iteration: 0, bestRsum: 0 };
  }
  const s: TrainState = { reg, adam, epoch: file.epoch, step: 0, iteration: file.iteration, bestRsum: file.bestRsum };
  const where = { epoch: s.epoch, iteration: s.iteration, bestRsum: s.bestRsum };
  log().info(
    { ...record, ...where },
    `resuming from ${from} (${file.source}) at epoch ${s.epoch}, iteration ${s.iteration}`,
  );
  log().warn(`${from}: ${NO_ADAM}`);
  run.runLog.info({ ...record, ...where, keys, optimizer: 'fresh' }, 'resume');
  return s;
}

/** Everything a vsl checkpoint holds: weights, Adam's state, position, best rsum. */
async function resumeVsl(o: TrainOptions, run: Run, adam: Adam): Promise<TrainState> {
  const file = o.resume!;
  const ck = await loadCheckpoint(file);
  checkWeightsFit(run.config, ck.weights, file, run.vocabFile);
  const reg = ParamRegistry.fromArrays(run.config, ck.weights, file);
  if (!ck.optimizer) log().warn(`${file}: ${NO_ADAM}`);
  else {
    adam.importState(reg, {
      step: ck.optimizer.step,
      m: new Map([...ck.optimizer.m].map(([k, a]) => [k, a.data as Float32Array])),
      v: new Map([...ck.optimizer.v].map(([k, a]) => [k, a.data as Float32Array])),
    });
  }
  const order = (ck.dataOrder ?? {}) as { epoch?: number; step?: number };
  const s: TrainState = {
    reg,
    adam,
    epoch: order.epoch ?? ck.epoch,
    step: order.step ?? 0,
    iteration: ck.iteration,
    bestRsum: ck.bestRsum,
  };
  log().info({ resume: file, epoch: s.epoch, step: s.step, iteration: s.iteration }, `resuming from ${file}`);
  return s;
}

/** The options a run records (in its checkpoints and train.log's run record): the model's, the data's, training's. */
export function runOptions(o: TrainOptions, run: Run) {
  return {
    model: run.config,
    data: { dataName: o.dataName, dataPath: o.dataPath, vocabPath: o.vocabPath ?? o.dataPath },
    train: o,
  };
}

/**
 * Write `file` in the run directory (temporary file + rename, in saveCheckpoint): weights, options, Adam's state
 * and the position to resume at (epoch, step within it).
 */
export async function writeCheckpoint(
  o: TrainOptions,
  run: Run,
  s: TrainState,
  file: string,
  epoch: number,
  step: number,
): Promise<string> {
  const weights = (await s.reg.toArrays()) as Map<string, ArrayRecord>;
  const st = await s.adam.exportState();
  const shapeOf = (k: string) => [...s.reg.get(k).shape];
  const out = path.join(run.dir, file);
  await saveCheckpoint(out, {
    weights,
    options: runOptions(o, run),
    epoch,
    iteration: s.iteration,
    bestRsum: s.bestRsum,
    optimizer: {
      step: st.step,
      m: new Map([...st.m].map(([k, d]) => [k, { shape: shapeOf(k), data: d }])),
      v: new Map([...st.v].map(([k, d]) => [k, { shape: shapeOf(k), data: d }])),
    },
    dataOrder: { seed: o.seed, epoch, step },
  });
  return out;
}

/** Copy checkpoint_last.h5 to model_best.h5 (temporary file + rename). */
export function keepAsBest(run: Run): void {
  const best = path.join(run.dir, 'model_best.h5');
  const tmp = tempNameFor(best);
  try {
    fs.copyFileSync(path.join(run.dir, 'checkpoint_last.h5'), tmp);
    fs.renameSync(tmp, best);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw fileError(best, e, 'write');
  }
}

/**
 * SIGINT / SIGTERM: the first asks the loop to finish its step and write checkpoint_last.h5 (`requested`), a
 * second one exits at once. `beforeWarn` runs first (it takes the progress bar down).
 */
export class StopOnSignal {
  requested: NodeJS.Signals | null = null;
  private readonly handler = (sig: NodeJS.Signals) => {
    this.beforeWarn();
    if (this.requested) process.exit(sig === 'SIGINT' ? 130 : 143);
    this.requested = sig;
    log().warn(`${sig}: finishing the current step, then writing ${path.join(this.dir, 'checkpoint_last.h5')}`);
  };
  constructor(
    private readonly dir: string,
    private readonly beforeWarn: () => void,
  ) {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }
  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}
