// The chunked training scores (runtime/chunkedScores.ts): length buckets pad little and cover the range; scores
// and gradients in several chunks (the first ones recomputed in the backward pass, the last one on the tape) and
// buckets are those of one graph.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import {
  blockParamNames,
  bytesPerPair,
  captionChunks,
  chunkedScores,
  lengthBuckets,
} from '../../src/runtime/chunkedScores.js';
import { defaultModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { Weights } from '../../src/model/weights.js';
import { blockScores } from '../../src/model/similarity.js';
import { valueAndGradients } from '../../src/ops/tape.js';
import { maxAbsDiff } from '../helpers/asserts.js';

before(async () => {
  await selectBackend('wasm');
});

test('length buckets cover the range in order, each padded little or short', () => {
  const lengths = [18, 18, 17, 17, 16, 15, 15, 14, 12, 11, 10, 9, 9, 8];
  const buckets = lengthBuckets(lengths, [0, lengths.length]);
  assert.equal(buckets[0][0], 0);
  assert.equal(buckets.at(-1)![1], lengths.length);
  buckets.slice(1).forEach(([a], i) => assert.equal(a, buckets[i][1], 'contiguous'));
  assert.ok(buckets.length >= 2, `one bucket would pad 8-token captions to 18: ${JSON.stringify(buckets)}`);
  for (const [a, b] of buckets) {
    const waste = 1 - lengths.slice(a, b).reduce((s, L) => s + L, 0) / ((b - a) * lengths[a]);
    assert.ok(waste <= 0.25 || b - a <= 4, `bucket [${a}, ${b}) wastes ${waste}`);
  }
  assert.deepEqual(lengthBuckets(Array<number>(6).fill(12), [0, 6]), [[0, 6]]);
});

for (const module of ['SGR', 'SAF'] as const) {
  test(`${module}: scores and gradients in chunks and buckets = one graph`, () => {
    const c = defaultModelConfig({
      module,
      vocabSize: 20,
      imgDim: 8,
      wordDim: 8,
      embedSize: 16,
      simDim: 8,
      sgrStep: 2,
    });
    const reg = ParamRegistry.init(c, 5);
    const lengths = [9, 9, 8, 7, 6, 6, 5, 4, 4, 3];
    const [nImg, nCap, Lp, D] = [4, lengths.length, lengths[0], c.embedSize];
    const mask = Float32Array.from({ length: nCap * Lp * D }, (_, i) =>
      Math.floor(i / D) % Lp < lengths[Math.floor(i / (Lp * D))] ? 1 : 0,
    );
    const regions = tf.randomNormal<tf.Rank.R3>([nImg, 36, D], 0, 1, 'float32', 1);
    const vGlobal = tf.randomNormal<tf.Rank.R2>([nImg, D], 0, 1, 'float32', 2);
    const words = tf.mul<tf.Tensor3D>(
      tf.randomNormal([nCap, Lp, D], 0, 1, 'float32', 3),
      tf.tensor3d(mask, [nCap, Lp, D]),
    );
    const tGlobal = tf.randomNormal<tf.Rank.R2>([nCap, D], 0, 1, 'float32', 4);
    const dS = tf.randomNormal([nImg, nCap], 0, 1, 'float32', 5);
    const names = blockParamNames(reg.trainable().map((e) => e.spec.name));
    const xs = [regions, vGlobal, words, tGlobal, ...names.map((n) => reg.get(n))];
    const run = (chunkBytes: number | null) =>
      valueAndGradients((r, v, wd, tg, ...ps) => {
        const img = { regions: r as tf.Tensor3D, vGlobal: v as tf.Tensor2D };
        const cap = { words: wd as tf.Tensor3D, tGlobal: tg as tf.Tensor2D, lengths };
        const byName = new Map(names.map((n, i) => [n, ps[i]]));
        const sims =
          chunkBytes === null
            ? blockScores(new Weights((n) => byName.get(n)!), c, img, cap, true).sims
            : chunkedScores(c, img, cap, byName, { chunkBytes });
        return tf.sum(tf.mul(sims, dS));
      }, xs);
    const one = run(null);
    const tight = 3 * nImg * bytesPerPair(lengths[0], c); // three captions per chunk
    assert.ok(captionChunks(lengths, nImg, c, tight).length >= 3, 'several chunks');
    for (const chunkBytes of [2 ** 30, tight]) {
      const r = run(chunkBytes);
      assert.ok(
        Math.abs(r.value.dataSync()[0] - one.value.dataSync()[0]) <= 1e-4,
        `value (chunks of ${chunkBytes} bytes)`,
      );
      r.grads.forEach((g, i) => {
        const e = maxAbsDiff(g.dataSync(), one.grads[i].dataSync());
        const scale = Math.max(1, ...Array.from(one.grads[i].dataSync(), Math.abs));
        assert.ok(
          e <= 1e-4 * scale,
          `gradient ${i < 4 ? ['regions', 'vGlobal', 'words', 'tGlobal'][i] : names[i - 4]} off by ${e}`,
        );
      });
    }
    reg.dispose();
  });
}
