// SGR's graph attention (ops/graphAttention.ts) against tfjs' own autodiff of the plain math, on random
// inputs with padded nodes, every query row and node 0 alone, and a width S that is not a multiple of the
// kernel's SIMD width: on wasm that checks the fused kernels (vsl_kernels.c), on cpu the tf-ops path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { graphAttention } from '../../src/ops/graphAttention.js';
import { maxAbsDiff } from '../helpers/asserts.js';

const backend = (process.env.VSL_TEST_BACKEND ?? 'wasm') as 'wasm' | 'cpu';

/** The plain math: masked softmax over the valid keys, padded query rows zeroed. */
function reference(q: tf.Tensor3D, x: tf.Tensor3D, counts: number[], nCap: number): tf.Tensor3D {
  const [P, R] = q.shape;
  const N = x.shape[1];
  const key = new Float32Array(P * N);
  const row = new Float32Array(P * R);
  for (let p = 0; p < P; p++) {
    const n = counts[p % nCap];
    for (let j = 0; j < N; j++) key[p * N + j] = j < n ? 0 : -1e9;
    for (let i = 0; i < R; i++) row[p * R + i] = i < n ? 1 : 0;
  }
  const logits = tf.add(tf.matMul(q, x, false, true), tf.tensor3d(key, [P, 1, N]));
  return tf.mul(tf.matMul(tf.softmax(logits), x), tf.tensor3d(row, [P, R, 1]));
}

for (const R of ['all', 1] as const) {
  test(`graph attention and its gradient match tfjs autodiff (${backend}, ${R === 1 ? 'node 0 alone' : 'every node'})`, async () => {
    await selectBackend(backend);
    const nImg = 3;
    const counts = [7, 4, 1, 5]; // a caption of 0 words has the global node alone
    const nCap = counts.length;
    const [P, N, S] = [nImg * nCap, 7, 13];
    const rows = R === 'all' ? N : 1;
    const x = tf.randomNormal<tf.Rank.R3>([P, N, S], 0, 1, 'float32', 1);
    const q = tf.randomNormal<tf.Rank.R3>([P, rows, S], 0, 1, 'float32', 2);
    const dy = tf.randomNormal<tf.Rank.R3>([P, rows, S], 0, 1, 'float32', 3);
    const count = tf.tensor1d(counts, 'int32');
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(graphAttention(a as tf.Tensor3D, b as tf.Tensor3D, { nCap, count }), dy));
    const g = (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(reference(a as tf.Tensor3D, b as tf.Tensor3D, counts, nCap), dy));
    const mine = graphAttention(q, x, { nCap, count });
    const ref = reference(q, x, counts, nCap);
    assert.ok(maxAbsDiff(mine.dataSync(), ref.dataSync()) <= 1e-5, 'forward');
    const [dq, dx] = tf.grads(f)([q, x]);
    const [rq, rx] = tf.grads(g)([q, x]);
    // padded key rows of x get no gradient from either (their softmax weight is exactly 0)
    assert.ok(
      maxAbsDiff(dq.dataSync(), rq.dataSync()) <= 1e-4,
      `dq off by ${maxAbsDiff(dq.dataSync(), rq.dataSync())}`,
    );
    assert.ok(
      maxAbsDiff(dx.dataSync(), rx.dataSync()) <= 1e-4,
      `dx off by ${maxAbsDiff(dx.dataSync(), rx.dataSync())}`,
    );
    assert.ok(Math.max(...Array.from(dx.dataSync(), Math.abs)) > 0.1, 'the gradient is not trivially zero');
  });
}
