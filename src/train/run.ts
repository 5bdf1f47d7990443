// The parts of a training run around its loop: open the run (directory, backend, vocabulary, splits, logs),
// initialise or resume the model and optimizer, write checkpoints, and stop cleanly on SIGINT / SIGTERM.
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { selectBackend, type BackendChoice } from '../engine/backend.js';
import { openSplit, type PrecompSplit } from '../data/precomp.js';
import { loadVocab, type Vocab } from '../data/vocab.js';
import type { ModelConfig } from '../model/config.js';
import { ParamRegistry } from '../model/params.js';
import { loadCheckpoint, saveCheckpoint, type ArrayRecord } from '../io/checkpoint.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { Adam } from './adam.js';
import { mixSeed } from '../util/rng.js';
import { modelConfigOf, type TrainOptions } from './options.js';

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
  const vocab = loadVocab(path.join(o.vocabPath ?? o.dataPath, `${o.dataName}_vocab.json`));
  const train = openSplit(o.dataPath, o.dataName, 'train', { imgDim: o.imgDim });
  const dev = openSplit(o.dataPath, o.dataName, 'dev', { imgDim: o.imgDim, maxCaptions: o.maxDevCaptions });
  const runLog = pino({ base: undefined }, pino.destination({ dest: path.join(dir, 'train.log'), sync: true }));
  return {
    dir,
    vocab,
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

/** A fresh model (seeded), or everything a checkpoint holds: weights, Adam's state, position, best rsum. */
export async function initOrResume(o: TrainOptions, config: ModelConfig): Promise<TrainState> {
  const adam = new Adam(o.learningRate);
  if (!o.resume)
    return {
      reg: ParamRegistry.init(config, mixSeed(o.seed, 0x1417)),
      adam,
      epoch: 0,
      step: 0,
      iteration: 0,
      bestRsum: 0,
    };
  const ck = await loadCheckpoint(o.resume);
  const reg = ParamRegistry.fromArrays(config, ck.weights, o.resume);
  if (ck.optimizer) {
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
  log().info({ resume: o.resume, epoch: s.epoch, step: s.step, iteration: s.iteration }, `resuming from ${o.resume}`);
  return s;
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
    options: {
      model: run.config,
      data: { dataName: o.dataName, dataPath: o.dataPath, vocabPath: o.vocabPath ?? o.dataPath },
      train: o,
    },
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
  const tmp = path.join(run.dir, 'model_best.h5.tmp');
  fs.copyFileSync(path.join(run.dir, 'checkpoint_last.h5'), tmp);
  fs.renameSync(tmp, path.join(run.dir, 'model_best.h5'));
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
