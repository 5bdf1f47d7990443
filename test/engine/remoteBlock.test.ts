// A training step with a worker thread (engine/remoteBlock.ts) taking the last captions computes what the
// single-threaded step computes: the same loss, the same SAF statistics, and the same gradients up to float
// summation order (the two shares' gradients are added in a different order; gradients that are exactly 0 in
// exact arithmetic, such as the global-attention biases under their softmax, come out as ±5e-7 noise).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/engine/backend.js';
import { defaultModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { remoteSplit } from '../../src/engine/chunkedScores.js';
import { lossAndGrads, type StepOptions, type TrainBatch } from '../../src/train/step.js';
import { RemoteBlockWorker } from '../../src/engine/remoteBlock.js';
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
  const lengths = Array(10).fill(12);
  // both shares in one chunk: max(h, 10 - h) + max(2h, 3(10 - h)) is least (18) at h = 6
  assert.equal(remoteSplit(lengths, 10, 64, 2 ** 30), 6);
  assert.equal(remoteSplit([5, 4], 2, 8, 2 ** 30), 1);
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
    const remote = await RemoteBlockWorker.start({ backend: 'wasm', config: c, chunkBytes: 2 ** 30 });
    try {
      const o = (r?: RemoteBlockWorker): StepOptions => ({
        margin: 0.2,
        maxViolation: false,
        semantic: 'visual',
        gradClip: 2,
        dropout: 0.4,
        chunkBytes: 2 ** 30,
        remote: r,
        seed: () => 11,
      });
      const a = lossAndGrads(reg, c, batch, o());
      const b = lossAndGrads(reg, c, batch, o(remote));
      assert.ok(Math.abs(a.total - b.total) <= 1e-6 * Math.abs(a.total), `loss ${a.total} vs ${b.total}`);
      assert.equal(a.safStats.length > 0, module === 'SAF');
      if (module === 'SAF') {
        const cat = (s: typeof a.safStats) => Array.from(tf.concat(s.map((x) => x.mean)).dataSync());
        const [ma, mb] = [cat(a.safStats), cat(b.safStats)];
        assert.equal(ma.length, 12);
        ma.forEach((v, i) => assert.ok(Math.abs(v - mb[i]) <= 1e-6, `SAF mean ${i}: ${v} vs ${mb[i]}`));
      }
      for (const [name, g] of a.grads) {
        const x = g.dataSync();
        const y = b.grads.get(name)!.dataSync();
        const scale = Math.max(...Array.from(x, Math.abs));
        // sim_eval_w.bias sums dL/dscore over all B² pairs, terms of both signs that nearly cancel (the same
        // tensor is on goldenSuite.ts's cancellation-limited list): its order of summation shows at 4e-4
        const rtol = name === 'sim_enc.sim_eval_w.bias' ? 1e-3 : 1e-4;
        for (let i = 0; i < x.length; i++) {
          assert.ok(
            Math.abs(x[i] - y[i]) <= 1e-6 + rtol * scale,
            `${name}[${i}]: ${x[i]} vs ${y[i]} (max |g| ${scale})`,
          );
        }
      }
      for (const r of [a, b]) {
        tf.dispose([
          ...r.grads.values(),
          ...r.bnStats.flatMap((s) => [s.mean, s.varUnbiased]),
          ...r.safStats.flatMap((s) => [s.mean, s.varUnbiased]),
        ]);
      }
    } finally {
      await remote.close();
      reg.dispose();
    }
  });
}
