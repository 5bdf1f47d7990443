// tf.memory().numTensors stays flat across 20 repeated training steps (trainStep directly, tiny SGR and
// SAF, the summed and the hardest-negative hinge, with the visual semantic loss, in one chunk, in chunks and
// with a worker thread), and across validations.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { openSplit, type PrecompSplit } from '../../src/data/precomp.js';
import { encodeCaption, loadVocab } from '../../src/data/vocab.js';
import { ParamRegistry } from '../../src/model/params.js';
import { TrainData } from '../../src/train/batches.js';
import { modelConfigOf, resolveOptions } from '../../src/train/options.js';
import { trainStep } from '../../src/train/step.js';
import { StepPartner } from '../../src/runtime/stepPartner.js';
import { oneThreadEngine } from '../../src/runtime/stepEngine.js';
import { twoThreadEngine } from '../../src/runtime/twoThreadEngine.js';
import { Adam } from '../../src/train/adam.js';
import { validate } from '../../src/train/validate.js';
import { Rng } from '../../src/util/rng.js';
import { setLogLevel } from '../../src/util/log.js';
import path from 'node:path';
import { DATA_NAME, makeData, rmrf, tempDir } from '../train/trainHelpers.js';

let tmp = '';
let dataPath = '';
let trainSplit: PrecompSplit;
let dev: PrecompSplit;

before(async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
  tmp = tempDir('mem');
  dataPath = makeData(tmp, 8, 3);
  trainSplit = openSplit(dataPath, DATA_NAME, 'train', { imgDim: 32 });
  dev = openSplit(dataPath, DATA_NAME, 'dev', { imgDim: 32 });
});
after(() => {
  trainSplit?.close();
  dev?.close();
  rmrf(tmp);
});

for (const module of ['SGR', 'SAF'] as const) {
  test(`${module}: numTensors does not grow over 20 training steps`, async () => {
    const o = resolveOptions({}, { imgDim: 32, wordDim: 16, embedSize: 32, simDim: 16, module, sgrStep: 2 }, 'test');
    const vocab = loadVocab(path.join(dataPath, `${DATA_NAME}_vocab.json`));
    const config = modelConfigOf(o, vocab.size);
    const reg = ParamRegistry.init(config, 7);
    const adam = new Adam(0.001);
    const data = new TrainData(trainSplit, vocab, 'visual');
    const batches = data.batchesOf(data.epochOrder(1, 0), 8); // 40 captions: 5 full batches of 8
    const counts: number[] = [];
    const partner = await StepPartner.start({ backend: 'wasm', config, chunkBytes: 2 ** 30 });
    const engines = [oneThreadEngine(2 ** 30), oneThreadEngine(1), twoThreadEngine(partner, 2 ** 30)];
    for (let i = 0; i < 20; i++) {
      const capIdx = batches[i % batches.length];
      const batch = data.assemble(capIdx, await data.readImages(capIdx));
      const rng = new Rng(100 + i);
      const r = trainStep(reg, config, adam, batch, {
        margin: 0.2,
        maxViolation: i >= 10, // both hinge variants
        semantic: 'visual',
        gradClip: 2,
        dropout: 0.4,
        // the single-chunk fast path, one chunk per caption, and the training worker
        engine: engines[i % 3],
        seed: rng.seed(),
      });
      assert.ok(Number.isFinite(r.total), `step ${i}: loss ${r.total}`);
      counts.push(tf.memory().numTensors);
    }
    await partner.close();
    // step 0 creates Adam's moment variables; from then on the count is constant
    assert.deepEqual(counts.slice(1), Array(19).fill(counts[1]), `numTensors per step: ${counts.join(' ')}`);
    assert.equal(counts[0], counts[1], `numTensors per step: ${counts.join(' ')}`);

    // validation (eval mode, the whole dev split) leaves nothing behind either
    const devTokens = dev.captions.map((c) => encodeCaption(vocab, c));
    await validate(reg, config, dev, devTokens);
    const afterOne = tf.memory().numTensors;
    for (let i = 0; i < 3; i++)
      await validate(reg, config, dev, devTokens, { threads: i === 0 ? 1 : 2, backend: tf.getBackend() });
    assert.equal(tf.memory().numTensors, afterOne);
    assert.equal(afterOne, counts[19]);

    reg.dispose();
    adam.dispose();
  });
}
