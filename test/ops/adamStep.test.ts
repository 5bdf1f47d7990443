// The Adam step's wasm kernel (ops/adamStep.ts, kernels/vsl_kernels.c adam_step) gives the same bits as the
// thirteen tf ops it replaces (train/adam.ts's update, written out here), on a length that leaves a tail
// past the last SIMD vector, with zero, tiny and large gradients and moments, at the first step and a later one,
// and with the clipping's scale folded in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { adamStep, type AdamScalars } from '../../src/ops/adamStep.js';
import { Rng } from '../../src/util/rng.js';

function tfOps(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: AdamScalars): Float32Array[] {
  return tf.tidy(() => {
    if (s.scale !== undefined) g = tf.mul(g, s.scale); // the clipping, as clipGradNorm scales
    const m1 = tf.add(tf.mul(m, s.beta1), tf.mul(g, 1 - s.beta1));
    const v1 = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(g), 1 - s.beta2));
    const denom = tf.add(tf.div(tf.sqrt(v1), s.sqrtBc2), s.eps);
    const p1 = tf.sub(p, tf.mul(tf.div(m1, denom), s.stepSize));
    return [p1, m1, v1].map((t) => Float32Array.from(t.dataSync() as Float32Array));
  });
}

test('the wasm Adam step equals the tf ops bit for bit', async () => {
  await selectBackend('wasm');
  const n = 1031;
  const rng = new Rng(3);
  const p = rng.fillUniform(new Float32Array(n), -1, 1);
  const g = rng.fillUniform(new Float32Array(n), -1, 1).map((x, i) => (i % 7 === 0 ? 0 : x * 10 ** ((i % 9) - 6)));
  const m = rng.fillUniform(new Float32Array(n), -1e-3, 1e-3);
  const v = rng.fillUniform(new Float32Array(n), 0, 1e-4).map((x, i) => (i % 5 === 0 ? 0 : x));
  const steps: [number, number | undefined][] = [
    [1, undefined],
    [37, undefined],
    [2, 0.3137],
  ];
  for (const [t, scale] of steps) {
    const s: AdamScalars = {
      ...(scale === undefined ? {} : { scale }),
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      sqrtBc2: Math.sqrt(1 - 0.999 ** t),
      stepSize: 2e-4 / (1 - 0.9 ** t),
    };
    const ts = [p, g, m, v].map((a) => tf.tensor1d(a));
    const got = adamStep(ts[0], ts[1], ts[2], ts[3], s);
    const want = tfOps(ts[0], ts[1], ts[2], ts[3], s);
    got.forEach((x, i) => {
      const a = x.dataSync() as Float32Array;
      assert.equal(a.length, n);
      const diff = a.findIndex((y, j) => !Object.is(y, want[i][j]));
      assert.equal(diff, -1, `output ${i}, step ${t}: element ${diff}: ${a[diff]} vs ${want[i][diff]}`);
    });
    tf.dispose([...ts, ...got]);
  }
});
