// A training step on two threads (runtime/twoThreadEngine.ts: the worker encodes the captions and scores the last
// ones) computes what the one-thread step computes: the same loss, the same SAF statistics, and the same
// gradients up to float summation order (the two shares' gradients are added in a different order; gradients
// that are exactly 0 in exact arithmetic, such as the global-attention biases under their softmax, come out as
// ±5e-7 noise). The dropout masks are the same: each derives from the step's seed and its site's name.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { defaultModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { splitPoint, twoThreadEngine } from '../../src/runtime/twoThreadEngine.js';
import { oneThreadEngine, type StepEngine } from '../../src/runtime/stepEngine.js';
import { lossAndGrads, type StepOptions, type TrainBatch } from '../../src/train/step.js';
import { StepPartner } from '../../src/runtime/stepPartner.js';
import { Rng } from '../../src/util/rng.js';
import { setLogLevel } from '../../src/util/log.js';

before(async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
});
after(() => tf.disposeVariables());

function batchOf(B: number, imgDim: number, vocab: number): TrainBatch {
  const rng = new Rng(5);
  const lengths = Array.from({ length: B }, (_, i) => 9 - Math.floor((i * 6) / B)); // 9 .. 4, longest first
  const L = lengths[0];
  const ids = new Int32Array(B * L);
  lengths.forEach((n, b) => {
    for (let t = 0; t < n; t++) ids[b * L + t] = 1 + rng.int(vocab - 1);
  });
  return {
    images: rng.fillUniform(new Float32Array(B * 36 * imgDim), 0, 1),
    tokens: { ids, lengths, maxLen: L },
    imageSim: rng.fillUniform(new Float32Array(B * B), 0, 1),
    captionSim: null,
  };
}

test('the split balances the two threads and leaves each at least one caption', () => {
  const c = defaultModelConfig({ embedSize: 64, simDim: 16 });
  // equal captions, one chunk each: the halves
  assert.equal(splitPoint(Array<number>(10).fill(12), 10, c, 2 ** 30), 5);
  // a caption costs its length (+2): 4 x 22 on one side against 6 x 12 on the other is the closest pair
  assert.equal(splitPoint([20, 20, 20, 20, 10, 10, 10, 10, 10, 10], 10, c, 2 ** 30), 4);
  assert.equal(splitPoint([5, 4], 2, c, 2 ** 30), 1);
});

for (const module of ['SGR', 'SAF'] as const) {
  test(`${module}: a step with a worker thread gives the single-threaded loss and gradients`, async () => {
    const c = defaultModelConfig({
      module,
      vocabSize: 50,
      imgDim: 48,
      wordDim: 16,
      embedSize: 32,
      simDim: 16,
      sgrStep: 2,
    });
    const reg = ParamRegistry.init(c, 3);
    const batch = batchOf(12, c.imgDim, c.vocabSize);
    const partner = await StepPartner.start({ backend: 'wasm', config: c, chunkBytes: 2 ** 30 });
    try {
      const o = (engine: StepEngine): StepOptions => ({
        margin: 0.2,
        maxViolation: false,
        semantic: 'visual',
        gradClip: 2,
        dropout: 0.4,
        engine,
        seed: 11,
      });
      const a = lossAndGrads(reg, c, batch, o(oneThreadEngine(2 ** 30)));
      const b = lossAndGrads(reg, c, batch, o(twoThreadEngine(partner, 2 ** 30)));
      assert.ok(Math.abs(a.total - b.total) <= 1e-6 * Math.abs(a.total), `loss ${a.total} vs ${b.total}`);
      assert.equal(a.captionStats.length > 0, module === 'SAF');
      if (module === 'SAF') {
        const cat = (s: typeof a.captionStats) => Array.from(tf.concat(s.map((x) => x.mean)).dataSync());
        const [ma, mb] = [cat(a.captionStats), cat(b.captionStats)];
        assert.equal(ma.length, 12);
        ma.forEach((v, i) => assert.ok(Math.abs(v - mb[i]) <= 1e-6, `SAF mean ${i}: ${v} vs ${mb[i]}`));
      }
      // Float summation order differs between the two; the bound takes the tensor's own scale and, for
      // gradients that are sums of cancelling terms (zero in exact arithmetic, or nearly), the step's largest
      // gradient G, as the golden README's rule does: max(1e-4 max|g|, 1e-6 G).
      assert.equal(a.grads.size, reg.trainable().length, 'a gradient for every parameter');
      assert.deepEqual([...b.grads.keys()].sort(), [...a.grads.keys()].sort());
      const G = Math.max(...[...a.grads.values()].map((g) => Math.max(...Array.from(g.dataSync(), Math.abs))));
      for (const [name, g] of a.grads) {
        const x = g.dataSync();
        const y = b.grads.get(name)!.dataSync();
        const bound = Math.max(1e-4 * Math.max(...Array.from(x, Math.abs)), 1e-6 * G);
        for (let i = 0; i < x.length; i++) {
          assert.ok(Math.abs(x[i] - y[i]) <= bound, `${name}[${i}]: ${x[i]} vs ${y[i]} (bound ${bound}, G ${G})`);
        }
      }
      for (const r of [a, b]) {
        tf.dispose([
          ...r.grads.values(),
          ...r.bnStats.flatMap((s) => [s.mean, s.varUnbiased]),
          ...r.captionStats.flatMap((s) => [s.mean, s.varUnbiased]),
        ]);
      }
    } finally {
      await partner.close();
      reg.dispose();
    }
  });
}
