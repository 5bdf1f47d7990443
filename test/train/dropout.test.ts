// The dropout sites of a training step against the reference's model.py: nn.Dropout(0.4) on the word
// embeddings (EncoderText, before the GRU), and one in each branch of VisualSA and TextSA (embedding_local,
// embedding_global): five. A step draws one mask per site at --dropout p > 0, and none at --dropout 0, whatever
// its seeds (the deterministic check of docs/fidelity-training.md needs every site off).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/engine/backend.js';
import { defaultModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { lossAndGrads, type StepOptions, type TrainBatch } from '../../src/train/step.js';
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
  const L = lengths[0]!;
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
    const step = (dropout: number, firstSeed: number) => {
      let calls = 0;
      const o: StepOptions = {
        margin: 0.2,
        maxViolation: true,
        semantic: 'visual',
        gradClip: 2,
        dropout,
        chunkBytes: 2 ** 30,
        seed: () => firstSeed + 7919 * calls++,
      };
      const r = lossAndGrads(reg, c, batch, o);
      tf.dispose([...r.grads.values()]);
      for (const s of [...r.bnStats, ...r.safStats]) tf.dispose([s.mean, s.varUnbiased]);
      return { calls, total: r.total };
    };
    const on = [step(0.4, 1), step(0.4, 2)];
    assert.deepEqual(
      on.map((r) => r.calls),
      [REFERENCE_DROPOUT_SITES, REFERENCE_DROPOUT_SITES],
    );
    assert.notEqual(on[0]!.total, on[1]!.total, 'other masks, another loss');
    const off = [step(0, 1), step(0, 2)];
    assert.deepEqual(
      off.map((r) => r.calls),
      [0, 0],
    );
    assert.equal(off[0]!.total, off[1]!.total);
    reg.dispose();
  });
}
