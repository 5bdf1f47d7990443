// The dropout sites of a training step against the reference's model.py: nn.Dropout(0.4) on the word
// embeddings (EncoderText, before the GRU), and one in each branch of VisualSA and TextSA (embedding_local,
// embedding_global): five. A forward pass draws one mask per site at --dropout p > 0, and none at --dropout 0,
// whatever the step's seed (the deterministic check of docs/fidelity-training.md needs every site off).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { defaultModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { lossAndGrads, type StepOptions, type TrainBatch } from '../../src/train/step.js';
import { oneThreadEngine } from '../../src/runtime/stepEngine.js';
import { Weights } from '../../src/model/weights.js';
import { captionSide, imageSide } from '../../src/model/sgraf.js';
import type { RunMode } from '../../src/model/encoders.js';
import { Rng } from '../../src/util/rng.js';
import { setLogLevel } from '../../src/util/log.js';

before(async () => {
  setLogLevel('warn');
  await selectBackend('cpu');
});
after(() => tf.disposeVariables());

const REFERENCE_DROPOUT_SITES = 5; // model.py: EncoderText.dropout; VisualSA x2, TextSA x2 (nn.Dropout(dropout_rate))

function batchOf(B: number, imgDim: number, vocab: number): TrainBatch {
  const rng = new Rng(9);
  const lengths = Array.from({ length: B }, (_, i) => 7 - Math.floor((i * 4) / B));
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

for (const module of ['SGR', 'SAF'] as const) {
  test(`${module}: one mask per reference dropout site at p > 0, none at p = 0`, () => {
    const c = defaultModelConfig({
      module,
      vocabSize: 30,
      imgDim: 12,
      wordDim: 8,
      embedSize: 16,
      simDim: 8,
      sgrStep: 2,
    });
    const reg = ParamRegistry.init(c, 4);
    const batch = batchOf(6, c.imgDim, c.vocabSize);
    // the sites a forward pass draws masks at, by name (each mask derives from the step's seed and its name)
    const sitesAt = (dropout: number) => {
      const sites: string[] = [];
      const mode: RunMode = { training: true, dropout, seed: (site) => (sites.push(site), 1) };
      tf.tidy(() => {
        const w = Weights.of(reg);
        const B = batch.tokens.lengths.length;
        imageSide(w, c, tf.tensor3d(batch.images, [B, 36, c.imgDim]), mode);
        captionSide(w, c, batch.tokens, mode);
      });
      return sites;
    };
    const on = sitesAt(0.4);
    assert.equal(on.length, REFERENCE_DROPOUT_SITES, `sites: ${on.join(', ')}`);
    assert.equal(new Set(on).size, REFERENCE_DROPOUT_SITES, 'each site has a mask of its own');
    assert.deepEqual(sitesAt(0), []);
    // and a whole step: other step seeds, other masks at p > 0; the same loss whatever the seed at p = 0
    const step = (dropout: number, seed: number) => {
      const o: StepOptions = {
        margin: 0.2,
        maxViolation: true,
        semantic: 'visual',
        gradClip: 2,
        dropout,
        engine: oneThreadEngine(2 ** 30),
        seed,
      };
      const r = lossAndGrads(reg, c, batch, o);
      tf.dispose([...r.grads.values()]);
      for (const s of [...r.bnStats, ...r.captionStats]) tf.dispose([s.mean, s.varUnbiased]);
      return r.total;
    };
    assert.notEqual(step(0.4, 1), step(0.4, 2), 'other masks, another loss');
    assert.equal(step(0, 1), step(0, 2));
    reg.dispose();
  });
}
