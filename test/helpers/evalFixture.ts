// A tiny synthetic dataset and random-weight checkpoints for the evaluation tests, and the vsl binary as a child.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSynth } from '../../src/data/synth.js';
import { defaultModelConfig, type ModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { saveCheckpoint } from '../../src/io/checkpoint.js';
import { REPO_ROOT } from './paths.js';

export const BIN = path.join(REPO_ROOT, 'bin/vsl');
export const DATA_NAME = 'syn_precomp';

export interface EvalFixture {
  dir: string;
  dataPath: string;
  vocabSize: number;
}

/** <dir>/data/syn_precomp: train 4 images, dev and test `evalImages`, testall 5x as many; img_dim 64. */
export function makeEvalData(tag: string, evalImages: number, seed = 21): EvalFixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vsl-${tag}-`));
  const dataPath = path.join(dir, 'data');
  const syn = generateSynth({ out: dataPath, name: DATA_NAME, images: 4, evalImages, imgDim: 64, seed });
  return { dir, dataPath, vocabSize: syn.vocab.size };
}

/** A checkpoint of random weights (seeded) in <dir>/<name>.h5 that points at the fixture's data. */
export async function makeCheckpoint(
  f: EvalFixture,
  name: string,
  o: { module: 'SGR' | 'SAF'; seed: number; embedSize?: number; simDim?: number; wordDim?: number },
): Promise<string> {
  const config: ModelConfig = defaultModelConfig({
    module: o.module,
    vocabSize: f.vocabSize,
    imgDim: 64,
    wordDim: o.wordDim ?? 16,
    embedSize: o.embedSize ?? 32,
    simDim: o.simDim ?? 16,
  });
  const reg = ParamRegistry.init(config, o.seed);
  const file = path.join(f.dir, `${name}.h5`);
  await saveCheckpoint(file, {
    weights: (await reg.toArrays()) as never,
    options: { model: config, data: { dataName: DATA_NAME, dataPath: f.dataPath, vocabPath: f.dataPath }, train: {} },
    epoch: 1,
    iteration: 1,
    bestRsum: 0,
  });
  reg.dispose();
  return file;
}

export interface VslRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const childEnv = (cache: string) => ({ ...process.env, CI: 'true', XDG_CACHE_HOME: cache });

/** `node bin/vsl <args>` in `cwd` (synchronously); the cache folder is kept inside the test's directory. */
export function vslSync(cwd: string, args: string[], logLevel = 'warn', env: Record<string, string> = {}): VslRun {
  const r = spawnSync(process.execPath, [BIN, '--log-level', logLevel, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...childEnv(path.join(cwd, '.cache')), ...env },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `node bin/vsl <args>` in `cwd`, started in the background (for signals). */
export function vslStart(cwd: string, args: string[], logLevel = 'info') {
  const child = spawn(process.execPath, [BIN, '--log-level', logLevel, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(path.join(cwd, '.cache')),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const done = new Promise<VslRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
  return { child, done };
}

/** The pino JSON lines of a run's stderr. */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The one-line `vsl: ...` error of a failed run. */
export function errorLine(stderr: string): string | undefined {
  return stderr.split('\n').find((l) => l.startsWith('vsl: '));
}
