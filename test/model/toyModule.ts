// A third similarity module, registered by a test alone, proves that a module is one record: MEAN pools each
// pair's valid nodes (its global and local similarity vectors) with a plain mean, then a ReLU Linear, into the
// score head. Registered once per process, it gets its parameters from its record, trains one step (gradient
// reaching its own Linear, Adam moving it) and scores a block through the runtime's encoders and score matrix,
// equal to the model's one-graph forward. Nothing outside src/model/ knows its name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendName } from '../../src/ops/backend.js';
import { defaultModelConfig, REGIONS } from '../../src/model/config.js';
import { linear } from '../../src/model/ops.js';
import { linearSpecs } from '../../src/model/paramSpec.js';
import { moduleNames, registerModule } from '../../src/model/modules.js';
import type { SimilarityModule } from '../../src/model/similarityModule.js';
import { ParamRegistry } from '../../src/model/params.js';
import { Weights } from '../../src/model/weights.js';
import { forwardSims } from '../../src/model/sgraf.js';
import { evalMode } from '../../src/model/encoders.js';
import { oneThreadEngine } from '../../src/runtime/stepEngine.js';
import { encodeCaptionTokens, encodeImages } from '../../src/runtime/encode.js';
import { scoreMatrix } from '../../src/runtime/scoreMatrix.js';
import { Adam } from '../../src/train/adam.js';
import { trainStep } from '../../src/train/step.js';
import { maxAbsDiff } from '../helpers/asserts.js';

const PROJ = 'sim_enc.MEAN_module.proj';

const MEAN: SimilarityModule = {
  name: 'MEAN',
  describe: () => ', mean of the similarity vectors',
  params: (c) => linearSpecs(PROJ, c.simDim, c.simDim),
  detect: (keys) => (keys.some((k) => k.startsWith('sim_enc.MEAN_module.')) ? { module: 'MEAN' } : undefined),
  ownOptions: [],
  forward(w, _c, p) {
    const v = tf.expandDims(p.valid, 0).expandDims(3); // (1, nCap, N, 1)
    const mean = tf.div(tf.sum(tf.mul(p.nodes, v), 2), tf.sum(v, 2)); // (nImg, nCap, S)
    return { vec: tf.relu(linear(mean, w, PROJ)) as tf.Tensor3D };
  },
  vectorsPerToken: () => 4,
  scoreWorkerGiB: 0.3,
  pairMflop: 0.1,
};

if (!moduleNames().includes(MEAN.name)) registerModule(MEAN);

/** Deterministic token ids for captions of the given lengths (longest first), <start> 1 and <end> 2 included. */
function tokens(lengths: number[], vocab: number): Int32Array[] {
  return lengths.map((L, c) =>
    Int32Array.from({ length: L }, (_, t) => (t === 0 ? 1 : t === L - 1 ? 2 : 3 + ((c * 5 + t * 3) % (vocab - 3)))),
  );
}

export function toyModuleSuite(backend: BackendName): void {
  const c = defaultModelConfig({ module: 'MEAN', vocabSize: 20, imgDim: 12, wordDim: 6, embedSize: 10, simDim: 7 });

  test(`${backend}: a toy module registered by the test has its parameters, trains one step and scores a block`, async () => {
    await selectBackend(backend);
    const reg = ParamRegistry.init(c, 3);
    const own = reg.names().filter((n) => n.startsWith('sim_enc.MEAN_module.'));
    assert.deepEqual(own, [`${PROJ}.weight`, `${PROJ}.bias`]);
    assert.equal(reg.names().filter((n) => /SGR_module|SAF_module/.test(n)).length, 0);

    // one training step: its Linear gets a gradient and Adam moves it
    const B = 4;
    const lengths = [6, 5, 5, 3];
    const caps = tokens(lengths, c.vocabSize);
    const Lp = lengths[0];
    const ids = new Int32Array(B * Lp);
    caps.forEach((t, b) => ids.set(t, b * Lp));
    const images = Float32Array.from({ length: B * REGIONS * c.imgDim }, (_, i) => Math.sin(i * 0.37) + 0.1 * (i % 7));
    const before = Float32Array.from(reg.get(`${PROJ}.weight`).dataSync());
    const r = trainStep(
      reg,
      c,
      new Adam(0.01),
      { images, tokens: { ids, lengths, maxLen: Lp }, imageSim: null, captionSim: null },
      {
        margin: 0.2,
        maxViolation: false,
        semantic: 'none',
        gradClip: 2,
        dropout: 0,
        engine: oneThreadEngine(2 ** 30),
        seed: 1,
      },
    );
    assert.ok(Number.isFinite(r.total) && r.total > 0, `loss ${r.total}`);
    assert.ok(r.gradNorm > 0, `grad norm ${r.gradNorm}`);
    const moved = maxAbsDiff(before, reg.get(`${PROJ}.weight`).dataSync());
    assert.ok(moved > 1e-4, `the module's weight moved by ${moved}`);

    // a block scored by the runtime equals the model's one-graph forward
    const w = Weights.of(reg);
    const img = encodeImages(w, c, B, (s, e) => images.subarray(s * REGIONS * c.imgDim, e * REGIONS * c.imgDim));
    const enc = encodeCaptionTokens(w, c, caps);
    const sims = scoreMatrix(w, c, img, enc, { imageBlock: 3, captionBlock: 2 });
    const direct = tf.tidy(
      () =>
        forwardSims(
          w,
          c,
          tf.tensor3d(images, [B, REGIONS, c.imgDim]),
          { ids, lengths, maxLen: Lp },
          evalMode(),
        ).sims.dataSync() as Float32Array,
    );
    assert.equal(sims.length, B * B);
    assert.ok(sims.every((s) => s > 0 && s < 1));
    const e = maxAbsDiff(sims, direct);
    assert.ok(e <= 1e-5, `runtime vs one graph: ${e}`);
    w.dispose();
    reg.dispose();
  });
}
