// Shared helpers of the training tests: tiny synthetic datasets in temp dirs, the `vsl train` binary as a
// child process, train.log parsing, the chance rsum of a dev split, and the collapse detector.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSynth } from '../../src/data/synth.js';
import { REPO_ROOT } from '../helpers/paths.js';

export const BIN = path.join(REPO_ROOT, 'bin/vsl');
export const DATA_NAME = 'syn_precomp';

/** The tiny model every training test uses (flags of `vsl train`). */
export const TINY_MODEL = ['--img-dim', '32', '--word-dim', '16', '--embed-size', '32', '--sim-dim', '16'];

/** The leading arguments of `vsl train` for run directory `run` on the synthetic data at `dataPath`. */
export function trainRun(dataPath: string, run: string): string[] {
  return ['train', '--data-path', dataPath, '--data-name', DATA_NAME, '--model-name', run];
}

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vsl-train-${tag}-`));
}

/** A synthetic dataset under <dir>/data (train N images, dev/test M images, img_dim 32); returns the data path. */
export function makeData(dir: string, images: number, evalImages: number, seed = 3, imgDim = 32): string {
  const dataPath = path.join(dir, 'data');
  generateSynth({ out: dataPath, name: DATA_NAME, images, evalImages, seed, imgDim });
  return dataPath;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ReturnType<typeof spawn>;
  done: Promise<RunResult>;
}

/** Start `node bin/vsl --log-level warn <args>`. */
export function startVsl(args: string[], timeoutMs = 120_000): Running {
  const child = spawn(process.execPath, [BIN, '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: 'true' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

export function runVsl(args: string[], timeoutMs?: number): Promise<RunResult> {
  return startVsl(args, timeoutMs).done;
}

/** The first `vsl: ...` line of stderr (the CLI's one-line error), or undefined. */
export function errorLine(stderr: string): string | undefined {
  return stderr.split('\n').find((l) => l.startsWith('vsl: '));
}

export interface StepRecord {
  epoch: number;
  step: number;
  steps: number;
  iteration: number;
  lr: number;
  maxViolation: boolean;
  semanticLoss?: string; // the semantic term of this step ('none' during --semantic-warmup-epochs)
  loss: number;
  hinge: number;
  semantic: number;
  gradNorm: number;
}

/** The `step` records of a train.log (pino JSON lines), in file order. */
export function readSteps(trainLog: string): StepRecord[] {
  if (!fs.existsSync(trainLog)) return [];
  return fs
    .readFileSync(trainLog, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as StepRecord & { msg: string })
    .filter((r) => r.msg === 'step');
}

export interface ValidationRecord {
  epoch: number;
  iteration: number;
  where: string;
  rsum: number;
}

export function readMetrics(file: string): ValidationRecord[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ValidationRecord);
}

/**
 * Expected rsum of random scores on a dev split of nImg images with 5 captions each: t2i R@K = 100·K/nImg
 * (one right image among nImg); i2t R@K = 100·(1 − C(nCap−5, K)/C(nCap, K)) (any of 5 right captions in the top K).
 */
export function chanceRsum(nImg: number, capsPerImage = 5): number {
  const nCap = nImg * capsPerImage;
  let sum = 0;
  for (const K of [1, 5, 10]) {
    sum += 100 * Math.min(1, K / nImg);
    let none = 1;
    for (let i = 0; i < K; i++) none *= Math.max(0, nCap - capsPerImage - i) / (nCap - i);
    sum += 100 * (1 - none);
  }
  return sum;
}

/**
 * The hinge value of a batch of B whose scores are all equal (the collapse plateau): each positive then
 * violates the margin against each negative by exactly `margin`. Hardest negative: one per anchor, both
 * directions → 2·B·margin; summed hinge: every off-diagonal entry, both directions → 2·B·(B−1)·margin.
 */
export function collapseHinge(B: number, margin: number, maxViolation: boolean): number {
  return maxViolation ? 2 * B * margin : 2 * B * (B - 1) * margin;
}

export interface CollapseVerdict {
  epoch: number;
  steps: number;
  collapsed: boolean;
  /** max over the epoch's steps of |hinge − plateau| / plateau */
  maxRelDev: number;
}

/**
 * The collapse detector: an epoch has collapsed when every logged step's hinge sits on the constant-score
 * plateau (within `tol` relative): the scores have no spread, so the hinge is stuck at 2·B·margin (hardest
 * negative) or 2·B·(B−1)·margin (summed). The batch of a step is batchSize, or the remainder for the last
 * step of an epoch (nCaptions mod batchSize). Needs logStep 1 to see every step, but works on any subset.
 */
export function detectCollapse(
  steps: StepRecord[],
  o: { batchSize: number; margin: number; nCaptions: number; tol?: number },
): CollapseVerdict[] {
  const tol = o.tol ?? 0.02;
  const byEpoch = new Map<number, StepRecord[]>();
  for (const s of steps) {
    if (!byEpoch.has(s.epoch)) byEpoch.set(s.epoch, []);
    byEpoch.get(s.epoch)!.push(s);
  }
  const out: CollapseVerdict[] = [];
  for (const [epoch, recs] of [...byEpoch].sort((a, b) => a[0] - b[0])) {
    let maxRelDev = 0;
    for (const r of recs) {
      const last = r.step === r.steps - 1;
      const rem = o.nCaptions % o.batchSize;
      const B = last && rem !== 0 ? rem : o.batchSize;
      const plateau = collapseHinge(B, o.margin, r.maxViolation);
      maxRelDev = Math.max(maxRelDev, plateau > 0 ? Math.abs(r.hinge - plateau) / plateau : Math.abs(r.hinge));
    }
    out.push({ epoch, steps: recs.length, collapsed: recs.length > 0 && maxRelDev <= tol, maxRelDev });
  }
  return out;
}

export function rmrf(dir: string): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * test/fixtures/reference/ (scripts/make_reference_fixtures.sh): checkpoints the reference's own code wrote and
 * its logged training, at REF_MODEL's dims on makeData(dir, 8, 10) (40 training captions: one batch).
 */
export const REF_FIXTURES = path.join(REPO_ROOT, 'test/fixtures/reference');
export const REF_MODEL = ['--img-dim', '32', '--word-dim', '8', '--embed-size', '16', '--sim-dim', '8'];
/** The training options of the reference's logged runs (*_train.jsonl), as vsl flags (plus --module). */
export const REF_TRAINING = [
  ...REF_MODEL,
  '--batch-size',
  '128',
  '--num-epochs',
  '4',
  '--lr-update',
  '3',
  '--learning-rate',
  '0.002',
  '--log-step',
  '1',
  '--sgr-step',
  '3',
];

export interface ReferenceStep {
  kind: 'step';
  epoch: number;
  step: number;
  Eit: number;
  lr: number;
  Loss: number;
  Tripliet_loss: number;
  Visual_Semantic_loss: number;
}
export interface ReferenceValidation {
  kind: 'validation';
  epoch: number;
  Eiters: number;
  rsum: number;
}

/** The reference's logged training (scripts/ref_training.py train): its step lines and validations. */
export function readReferenceLog(file: string): { steps: ReferenceStep[]; validations: ReferenceValidation[] } {
  const recs = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ReferenceStep | ReferenceValidation);
  return {
    steps: recs.filter((r): r is ReferenceStep => r.kind === 'step'),
    validations: recs.filter((r): r is ReferenceValidation => r.kind === 'validation'),
  };
}
