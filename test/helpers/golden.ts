// Loads one golden file of the reference (test/fixtures/golden/{SGR,SAF}.h5) into vsl's terms.
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { readGroup, readStringAttr, type NamedArray } from '../../src/io/h5.js';
import { fromReferenceOpt, type ModelConfig } from '../../src/model/config.js';
import { ParamRegistry, type HostArray } from '../../src/model/params.js';
import type { TokenBatch } from '../../src/model/encoders.js';
import { GOLDEN } from './paths.js';

export interface Golden {
  config: ModelConfig;
  opt: Record<string, unknown>;
  weights: Map<string, HostArray>;
  inputs: Map<string, NamedArray>;
  outputs: Map<string, NamedArray>;
  train: Map<string, NamedArray>;
}

export async function loadGolden(module: 'SGR' | 'SAF'): Promise<Golden> {
  const file = path.join(GOLDEN, `${module}.h5`);
  const opt = JSON.parse((await readStringAttr(file, 'opt_json')) ?? '{}') as Record<string, unknown>;
  const weights = (await readGroup(file, 'weights')) as Map<string, HostArray>;
  return {
    config: fromReferenceOpt(opt),
    opt,
    weights,
    inputs: await readGroup(file, 'inputs'),
    outputs: await readGroup(file, 'outputs'),
    train: await readGroup(file, 'train'),
  };
}

export function registryOf(g: Golden): ParamRegistry {
  return ParamRegistry.fromArrays(g.config, g.weights, 'golden weights');
}

export function numbers(a: NamedArray): number[] {
  return Array.from(a.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** The golden captions as a token batch (already padded and sorted by length, as the reference's collate). */
export function goldenTokens(g: Golden, rows?: number[]): TokenBatch {
  const caps = g.inputs.get('captions')!;
  const [n, Lmax] = caps.shape;
  const ids = numbers(caps);
  const lengths = numbers(g.inputs.get('lengths')!);
  const pick = rows ?? [...Array(n).keys()];
  const maxLen = Math.max(...pick.map((r) => lengths[r]));
  const out = new Int32Array(pick.length * maxLen);
  pick.forEach((r, i) => {
    for (let t = 0; t < maxLen; t++) out[i * maxLen + t] = t < Lmax ? ids[r * Lmax + t] : 0;
  });
  return { ids: out, lengths: pick.map((r) => lengths[r]), maxLen };
}

export function goldenImages(g: Golden, rows?: number[]): tf.Tensor3D {
  const im = g.inputs.get('images')!;
  const [n, K, d] = im.shape;
  const data = im.data as Float32Array;
  const pick = rows ?? [...Array(n).keys()];
  const out = new Float32Array(pick.length * K * d);
  pick.forEach((r, i) => out.set(data.subarray(r * K * d, (r + 1) * K * d), i * K * d));
  return tf.tensor3d(out, [pick.length, K, d]);
}

/** A golden file's `exact/` (float64 truth) and `steps/` (five reference steps) groups. */
export interface GoldenTruth {
  exact: Map<string, NamedArray>;
  steps: Map<string, NamedArray>;
}

export async function loadGoldenTruth(module: 'SGR' | 'SAF'): Promise<GoldenTruth> {
  const file = path.join(GOLDEN, `${module}.h5`);
  return { exact: await readGroup(file, 'exact'), steps: await readGroup(file, 'steps') };
}

/** The training options the reference ran with (its opt_json): margin, hardest negatives, clip, lr. */
export function goldenTrainOptions(g: Golden): { margin: number; maxViolation: boolean; gradClip: number; lr: number } {
  const num = (k: string, d: number) => (typeof g.opt[k] === 'number' ? g.opt[k] : d);
  return {
    margin: num('margin', 0.2),
    maxViolation: g.opt.max_violation !== false,
    gradClip: num('grad_clip', 2.0),
    lr: num('learning_rate', 0.0002),
  };
}

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

/**
 * The golden README's one rule for a gradient tensor, judged against the float64 truth:
 * max|vsl - truth| <= max(1e-4 * max|truth|, 10 * max|ref32 - truth|, 1e-7 * G), where G is the largest
 * max|truth| over all tensors of the file. Returns the bound for every parameter name.
 */
export function gradientBounds(g: Golden, truth: GoldenTruth): Map<string, number> {
  const names = [...truth.exact.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice('grad.'.length));
  const G = Math.max(...names.map((n) => maxAbs(numbers(truth.exact.get(`grad.${n}`)!))));
  const out = new Map<string, number>();
  for (const n of names) {
    const t = numbers(truth.exact.get(`grad.${n}`)!);
    const r = numbers(g.train.get(`grad.${n}`)!);
    let refErr = 0;
    for (let i = 0; i < t.length; i++) refErr = Math.max(refErr, Math.abs(r[i] - t[i]));
    out.set(n, Math.max(1e-4 * maxAbs(t), 10 * refErr, 1e-7 * G));
  }
  return out;
}
