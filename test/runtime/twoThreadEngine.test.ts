// A training step on two threads (runtime/twoThreadEngine.ts: each thread encodes and scores its own share of the
// captions, the main thread the images too) computes what the one-thread step computes: the same loss, the same
// SAF statistics, and the same gradients up to float summation order (the two shares' gradients are added in a
// different order; gradients that are exactly 0 in exact arithmetic, such as the global-attention biases under
// their softmax, come out as ±5e-7 noise). The dropout masks are the same wherever the split falls: each derives
// from the step's seed and its site's name, and a share's caption masks are its rows of the whole batch's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { defaultModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { splitPoint, splitTimes, twoThreadEngine } from '../../src/runtime/twoThreadEngine.js';
import { oneThreadEngine, type StepEngine } from '../../src/runtime/stepEngine.js';
import { lossAndGrads, type StepOptions, type TrainBatch } from '../../src/train/step.js';
import type { ModelConfig } from '../../src/model/config.js';
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
  const c = defaultModelConfig();
  const equal = Array<number>(32).fill(13);
  const mixed = Array.from({ length: 32 }, (_, i) => 18 - Math.floor((i * 10) / 32)); // 18 .. 9, longest first
  for (const lengths of [equal, mixed]) {
    const h = splitPoint(lengths, 32, c, 2 ** 30);
    assert.ok(h >= 1 && h < 32, `h ${h}`);
    // the main thread encodes the images too: it takes fewer captions than the worker
    assert.ok(h < 16, `h ${h}`);
    // both threads end each phase at about the same time (within five captions' work of each other: the main
    // thread's image backward waits for the worker's share gradients, so a split that evens one phase can
    // lengthen the other, and the split minimises their sum)
    const t = splitTimes(lengths, 32, c, 2 ** 30, h);
    const perCaption = splitTimes(lengths, 32, c, 2 ** 30, 1).forward.worker / 31;
    assert.ok(Math.abs(t.forward.main - t.forward.worker) <= 5 * perCaption, JSON.stringify(t));
    assert.ok(Math.abs(t.backward.main - t.backward.worker) <= 5 * perCaption, JSON.stringify(t));
  }
  // the longer the first captions, the fewer of them on the main thread
  const longFirst = [...Array<number>(16).fill(20), ...Array<number>(16).fill(8)];
  assert.ok(splitPoint(longFirst, 32, c, 2 ** 30) < splitPoint(equal, 32, c, 2 ** 30));
  assert.equal(splitPoint([5, 4], 2, c, 2 ** 30), 1);
});

const tiny = (module: 'SGR' | 'SAF'): ModelConfig =>
  defaultModelConfig({ module, vocabSize: 50, imgDim: 48, wordDim: 16, embedSize: 32, simDim: 16, sgrStep: 2 });

type Step = ReturnType<typeof lossAndGrads>;

/** b (two threads) computes a's step (one thread): loss, SAF statistics, gradients; then both are disposed. */
function assertSameStep(a: Step, b: Step, nCap: number, what: string): void {
  try {
    assert.ok(Math.abs(a.total - b.total) <= 1e-6 * Math.abs(a.total), `${what}: loss ${a.total} vs ${b.total}`);
    assert.equal(b.captionStats.length > 0, a.captionStats.length > 0);
    if (a.captionStats.length) {
      const cat = (s: typeof a.captionStats) => Array.from(tf.concat(s.map((x) => x.mean)).dataSync());
      const [ma, mb] = [cat(a.captionStats), cat(b.captionStats)];
      assert.equal(ma.length, nCap);
      assert.equal(mb.length, nCap);
      ma.forEach((v, i) => assert.ok(Math.abs(v - mb[i]) <= 1e-6, `${what}: SAF mean ${i}: ${v} vs ${mb[i]}`));
    }
    // Float summation order differs between the two; the bound takes the tensor's own scale and, for
    // gradients that are sums of cancelling terms (zero in exact arithmetic, or nearly), the step's largest
    // gradient G, as the golden README's rule does: max(1e-4 max|g|, 1e-6 G).
    assert.deepEqual([...b.grads.keys()].sort(), [...a.grads.keys()].sort());
    const G = Math.max(...[...a.grads.values()].map((g) => Math.max(...Array.from(g.dataSync(), Math.abs))));
    for (const [name, g] of a.grads) {
      const x = g.dataSync();
      const y = b.grads.get(name)!.dataSync();
      const bound = Math.max(1e-4 * Math.max(...Array.from(x, Math.abs)), 1e-6 * G);
      for (let i = 0; i < x.length; i++) {
        assert.ok(
          Math.abs(x[i] - y[i]) <= bound,
          `${what}: ${name}[${i}]: ${x[i]} vs ${y[i]} (bound ${bound}, G ${G})`,
        );
      }
    }
  } finally {
    for (const r of [a, b]) {
      tf.dispose([
        ...r.grads.values(),
        ...r.bnStats.flatMap((s) => [s.mean, s.varUnbiased]),
        ...r.captionStats.flatMap((s) => [s.mean, s.varUnbiased]),
      ]);
    }
  }
}

const options = (engine: StepEngine): StepOptions => ({
  margin: 0.2,
  maxViolation: false,
  semantic: 'visual',
  gradClip: 2,
  dropout: 0.4,
  engine,
  seed: 11,
});

for (const module of ['SGR', 'SAF'] as const) {
  test(`${module}: a step with a worker thread gives the single-threaded loss and gradients`, async () => {
    const c = tiny(module);
    const reg = ParamRegistry.init(c, 3);
    const batch = batchOf(12, c.imgDim, c.vocabSize);
    const partner = await StepPartner.start({ backend: 'wasm', config: c, chunkBytes: 2 ** 30 });
    try {
      const a = lossAndGrads(reg, c, batch, options(oneThreadEngine(2 ** 30)));
      assert.equal(a.captionStats.length > 0, module === 'SAF');
      assert.equal(a.grads.size, reg.trainable().length, 'a gradient for every parameter');
      const b = lossAndGrads(reg, c, batch, options(twoThreadEngine(partner, 2 ** 30)));
      assertSameStep(a, b, 12, 'default split');
    } finally {
      await partner.close();
      reg.dispose();
    }
  });
}

test('wherever the split falls (dropout 0.4, in one chunk or one chunk per caption), the step is the same', async () => {
  const c = tiny('SAF');
  const reg = ParamRegistry.init(c, 4);
  const batch = batchOf(12, c.imgDim, c.vocabSize); // lengths 9 9 8 8 7 7 6 6 5 5 4 4
  const partner = await StepPartner.start({ backend: 'wasm', config: c, chunkBytes: 2 ** 30 });
  try {
    const a = () => lossAndGrads(reg, c, batch, options(oneThreadEngine(2 ** 30)));
    // the worker's first caption: as long as the batch's first, between two lengths, within one, the last
    for (const h of [1, 4, 5, 11]) {
      for (const chunkBytes of [2 ** 30, 1]) {
        const engine = twoThreadEngine(partner, chunkBytes, () => h);
        assertSameStep(a(), lossAndGrads(reg, c, batch, options(engine)), 12, `h ${h}, chunk ${chunkBytes}`);
      }
    }
    // another step seed: other masks, on both engines alike
    const seeded = (engine: StepEngine) => lossAndGrads(reg, c, batch, { ...options(engine), seed: 12 });
    assertSameStep(seeded(oneThreadEngine(2 ** 30)), seeded(twoThreadEngine(partner, 2 ** 30, () => 7)), 12, 'seed 12');
  } finally {
    await partner.close();
    reg.dispose();
  }
});

test("a batch of one caption (an epoch's short last batch) runs on the main thread alone", async () => {
  const c = tiny('SGR');
  const reg = ParamRegistry.init(c, 5);
  const batch = batchOf(1, c.imgDim, c.vocabSize);
  const partner = await StepPartner.start({ backend: 'wasm', config: c, chunkBytes: 2 ** 30 });
  try {
    const a = lossAndGrads(reg, c, batch, options(oneThreadEngine(2 ** 30)));
    const b = lossAndGrads(reg, c, batch, options(twoThreadEngine(partner, 2 ** 30)));
    assertSameStep(a, b, 1, 'B = 1');
  } finally {
    await partner.close();
    reg.dispose();
  }
});

test('a step that fails on the main thread releases the worker, which then takes the next step', async () => {
  const c = tiny('SGR');
  const reg = ParamRegistry.init(c, 6);
  const batch = batchOf(12, c.imgDim, c.vocabSize);
  const partner = await StepPartner.start({ backend: 'wasm', config: c, chunkBytes: 2 ** 30 });
  try {
    const engine = twoThreadEngine(partner, 2 ** 30);
    // the loss fails after the scores, while the worker waits for their gradients (the visual semantic loss
    // without the batch's image similarities): the worker drops the step
    assert.throws(() => lossAndGrads(reg, c, { ...batch, imageSim: null }, options(engine)), /image-image TF-IDF/);
    const a = lossAndGrads(reg, c, batch, options(oneThreadEngine(2 ** 30)));
    assertSameStep(a, lossAndGrads(reg, c, batch, options(engine)), 12, 'after a failed step');
  } finally {
    await partner.close();
    reg.dispose();
  }
});

test('a step that fails on the worker fails on the main thread with the worker error', async () => {
  const c = tiny('SGR');
  const reg = ParamRegistry.init(c, 7);
  const batch = batchOf(12, c.imgDim, c.vocabSize);
  // a worker started for another joint space cannot take the image side it is sent
  const partner = await StepPartner.start({ backend: 'wasm', config: { ...c, embedSize: 24 }, chunkBytes: 2 ** 30 });
  try {
    const engine = twoThreadEngine(partner, 2 ** 30);
    assert.throws(() => lossAndGrads(reg, c, batch, options(engine)), /training worker \(scores\)/);
  } finally {
    await partner.close();
    reg.dispose();
  }
});
