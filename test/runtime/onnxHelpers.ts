// What the ONNX tests share: one block of graph code as a small graph of its own (so that each block is checked
// against its tfjs forward alone), a run of a graph on host arrays, random inputs, and host copies of tensors.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, type Dim, type ElemType, type Value } from '../../src/runtime/onnx/builder.js';
import { createSession } from '../../src/runtime/onnx/session.js';
import { Rng } from '../../src/util/rng.js';
import { defaultModelConfig, type ModelConfig } from '../../src/model/config.js';
import type { ParamRegistry } from '../../src/model/params.js';
import { selectBackend } from '../../src/ops/backend.js';

export type HostInput = { type: ElemType; dims: Dim[]; data: Float32Array | Int32Array; shape: number[] };

/** tfjs on its cpu backend (the reference forward of these tests). */
export async function useCpu(): Promise<void> {
  await selectBackend('cpu');
}

/**
 * Build a graph from one block: `inputs` become graph inputs, `build` returns the block's outputs, which become
 * the graph outputs out0, out1, ... Returns the outputs of one run on the inputs' data.
 */
export async function runBlock(
  inputs: Record<string, HostInput>,
  build: (b: GraphBuilder, ins: Record<string, Value>) => Value | Value[],
): Promise<{ data: Float32Array; dims: readonly number[] }[]> {
  const b = new GraphBuilder('block');
  const ins: Record<string, Value> = {};
  for (const [name, x] of Object.entries(inputs)) ins[name] = b.input(name, x.type, x.dims);
  const outs = [build(b, ins)].flat();
  outs.forEach((o, i) => {
    b.op('Identity', [o], {}, `out${i}`);
    b.output(`out${i}`, 'float32', null);
  });
  const s = await createSession({ bytes: b.bytes(), name: 'block' });
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, x] of Object.entries(inputs)) feeds[name] = new ort.Tensor(x.type, x.data, x.shape);
  const r = await s.run(feeds);
  await s.release();
  return outs.map((_, i) => ({ data: r[`out${i}`].data as Float32Array, dims: r[`out${i}`].dims }));
}

/** A float32 input from a tensor (its dims dynamic, named d0, d1, ...). */
export function floatInput(t: tf.Tensor): HostInput {
  return { type: 'float32', dims: t.shape.map((_, i) => `d${i}`), data: t.dataSync() as Float32Array, shape: t.shape };
}

export function int32Input(data: Int32Array, shape: number[]): HostInput {
  return { type: 'int32', dims: shape.map((_, i) => `i${i}`), data, shape };
}

export function randomFloats(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  new Rng(seed).fillUniform(a, lo, hi);
  return a;
}

/** Token id sequences of the given lengths (ids 1..vocab-1; 0 is <pad>). */
export function randomTokens(lengths: number[], vocab: number, seed: number): Int32Array[] {
  const rng = new Rng(seed);
  return lengths.map((L) => Int32Array.from({ length: L }, () => 1 + Math.floor(rng.float() * (vocab - 1))));
}

/** Padded ids (n, Lp) of token sequences. */
export function padTokens(tokens: Int32Array[]): { ids: Int32Array; lengths: number[]; maxLen: number } {
  const maxLen = Math.max(...tokens.map((t) => t.length));
  const ids = new Int32Array(tokens.length * maxLen);
  tokens.forEach((t, r) => ids.set(t, r * maxLen));
  return { ids, lengths: tokens.map((t) => t.length), maxLen };
}

/** max |a - b| (lengths must agree). */
export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** Rows [0, rows) of each of the leading `outer` blocks of a row-major array of `blockRows` rows of `width`. */
export function leadingRows(a: ArrayLike<number>, outer: number, blockRows: number, rows: number, width: number) {
  const out: number[] = [];
  for (let o = 0; o < outer; o++) for (let i = 0; i < rows * width; i++) out.push(a[o * blockRows * width + i]);
  return out;
}

/** Random biases and BatchNorm parameters and statistics (ParamRegistry.init leaves them 0 / 1). */
export function perturb(reg: ParamRegistry, seed: number): void {
  let k = seed;
  for (const e of reg.entries.values()) {
    const r = e.spec.role;
    if (r !== 'bias' && r !== 'bn-weight' && r !== 'bn-bias' && r !== 'bn-mean' && r !== 'bn-var') continue;
    const n = e.spec.shape.reduce((a, b) => a * b, 1);
    const [lo, hi] = r === 'bn-var' ? [0.3, 2] : r === 'bn-weight' ? [0.5, 1.5] : [-0.3, 0.3];
    e.variable.assign(tf.tensor(randomFloats(n, k++, lo, hi), e.spec.shape));
  }
}

export function smallConfig(over: Partial<ModelConfig>): ModelConfig {
  return defaultModelConfig({ vocabSize: 50, imgDim: 40, wordDim: 20, embedSize: 48, simDim: 24, ...over });
}
