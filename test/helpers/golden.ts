// Loads one golden file of the reference (../shared/golden/{SGR,SAF}.h5) into vsl's terms.
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
