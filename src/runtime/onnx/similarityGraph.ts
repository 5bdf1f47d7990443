// The ONNX blocks of the similarity encoder up to its graph nodes, for a block of nImg images x nCap captions
// (image-major, as similarity.ts): the local similarity vectors (localSimilarity.ts's eval forward), the global
// ones, the l2-normalised nodes, and the node masks of each caption, made once per graph and shared by every step.
// Shaped as similarity.ts is, for big products: every word of the caption block meets every image's 36 regions in
// one (broadcast) MatMul, and the local Linear is one Gemm over all nImg·nCap·Lp rows.
import { ATTN_SMOOTH, LEAKY_SLOPE, NORM_EPS } from '../../model/config.js';
import { int, ints, type GraphBuilder, type Value } from './builder.js';
import {
  additiveMask,
  cast,
  dims,
  l2norm,
  leakyRelu,
  linearLast,
  reduceSum,
  reshape,
  softmax,
  unsqueeze,
  validMask,
} from './graphOps.js';
import type { HostWeights } from './hostWeights.js';

/** The dynamic sizes of a score block, as 1-D int64 values of one element. */
export interface BlockDims {
  nImg: Value;
  nCap: Value;
  Lp: Value;
}

export function blockDims(b: GraphBuilder, regions: Value, words: Value): BlockDims {
  return { nImg: dims(b, regions, 0), nCap: dims(b, words, 0), Lp: dims(b, words, 1) };
}

/** The valid nodes of each caption (its global node and its L words): additive key mask and 0/1 weights. */
export interface NodeMasks {
  keys: Value; // (1, nCap, 1, N) 0 / -1e9, for SGR's softmax over nodes
  valid: Value; // (1, nCap, N) 1 / 0, for SAF's gates
}

export function nodeMasks(b: GraphBuilder, lengths: Value, d: BlockDims): NodeMasks {
  return b.scope('nodeMasks', () => {
    const one = b.i64([1]);
    const count = b.op('Add', [cast(b, lengths, 'int64'), b.constant([1], [], 'int64')]);
    const valid = validMask(b, count, b.op('Add', [d.Lp, one])); // (nCap, N)
    return {
      keys: unsqueeze(b, additiveMask(b, valid), [0, 2]),
      valid: unsqueeze(b, cast(b, valid, 'float32'), [0]),
    };
  });
}

/**
 * Local similarity vectors before their l2norm, (nImg, nCap·Lp, S), as localSimilarity.ts's imageForward for
 * every image at once: SCAN text-to-image attention (LeakyReLU, l2norm over each caption's words, softmax(9·) over
 * the 36 regions), the context normalised through the 36 x 36 Gram matrix (‖Σ α v‖² = αᵀ(V Vᵀ)α), then
 * Linear((ĉ - w)²). Padded words must be zero rows (their nodes are masked later).
 */
export function localVectors(b: GraphBuilder, w: HostWeights, words: Value, regions: Value, d: BlockDims): Value {
  return b.scope('localSimilarity', () => {
    const D = w.config.embedSize;
    const K = 36;
    const words2 = reshape(b, words, [-1, D]); // (R, D), R = nCap·Lp
    const regT = b.op('Transpose', [regions], { perm: ints([0, 2, 1]) }); // (nImg, D, K)
    const a = leakyRelu(b, b.op('MatMul', [words2, regT]), LEAKY_SLOPE); // (nImg, R, K)
    const a4 = reshape(b, a, [0, d.nCap, d.Lp, K]);
    const nrm = b.op('Add', [b.op('ReduceL2', [a4], { axes: ints([2]), keepdims: int(1) }), b.scalar(NORM_EPS)]);
    const z = b.op('Mul', [a4, b.op('Div', [b.scalar(ATTN_SMOOTH), nrm])]);
    const alpha = reshape(b, softmax(b, z), [0, -1, K]); // (nImg, R, K)
    const gram = b.op('MatMul', [regions, regT]); // (nImg, K, K)
    const sq = reduceSum(b, b.op('Mul', [b.op('MatMul', [alpha, gram]), alpha]), [-1], true); // (nImg, R, 1)
    const r = b.op('Add', [b.op('Sqrt', [b.op('Relu', [sq])]), b.scalar(NORM_EPS)]);
    const ctx = b.op('MatMul', [b.op('Div', [alpha, r]), regions]); // (nImg, R, D), l2-normed context
    // the words as (1, R, D), not (R, D): a Sub of ranks 3 and 2 took ORT's general broadcast, 3-4x slower than
    // a Mul of the same size (measured with one image, where (1, R, D) makes the shapes equal)
    const diff = b.op('Sub', [ctx, reshape(b, words, [1, -1, D])]);
    return linearLast(b, b.op('Mul', [diff, diff]), w.linear('sim_enc.sim_tranloc_w'), 'sim_enc.sim_tranloc_w');
  });
}

/** Global similarity vectors before their l2norm, (nImg, nCap, S): Linear((v̄ - t̄)²) for every pair. */
export function globalVectors(b: GraphBuilder, w: HostWeights, vGlobal: Value, tGlobal: Value): Value {
  return b.scope('globalSimilarity', () => {
    const diff = b.op('Sub', [unsqueeze(b, vGlobal, [1]), unsqueeze(b, tGlobal, [0])]); // (nImg, nCap, D)
    return linearLast(b, b.op('Mul', [diff, diff]), w.linear('sim_enc.sim_tranglo_w'), 'sim_enc.sim_tranglo_w');
  });
}

/** The nodes of every pair, l2-normalised, (nImg, nCap, N, S): the global vector first, then the words'. */
export function similarityNodes(b: GraphBuilder, S: number, local: Value, glob: Value, d: BlockDims): Value {
  return b.scope('nodes', () => {
    const g = unsqueeze(b, l2norm(b, glob), [2]); // (nImg, nCap, 1, S)
    const l = reshape(b, l2norm(b, local), [-1, d.nCap, d.Lp, S]);
    return b.op('Concat', [g, l], { axis: int(2) });
  });
}
