// Each hand-written gradient of the model against tfjs' own autodiff of the same math, at tiny dims on the cpu
// backend: the bi-GRU over packed sequences (model/gru.ts) against its plain per-step
// GRU over padded, masked captions (plainGru); the local similarity block (model/localSimilarity.ts) against autodiff of
// its own forward; SGR's reasoning steps (model/sgr.ts, with the query-key fold and node 0 alone in the
// last step) against autodiff of the reference's unfolded step. (The fused attention kernel alone:
// test/ops/graphAttention.test.ts.)
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { defaultModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { Weights } from '../../src/model/weights.js';
import { encodeCaptions, evalMode } from '../../src/model/encoders.js';
import { plainGru } from '../../src/model/gru.js';
import { localSimilarity, localSimilarityEval } from '../../src/model/localSimilarity.js';
import { graphReasoning, plainGraphReasoning } from '../../src/model/sgr.js';
import { valueAndGradients } from '../../src/ops/tape.js';
import { maxAbsDiff } from '../helpers/asserts.js';

before(async () => {
  await selectBackend('cpu');
});

/** Each caption reversed within its own length (padding stays where it is). */
function reverseWithin(x: tf.Tensor3D, lengths: number[]): tf.Tensor3D {
  const Lp = x.shape[1];
  const rows = lengths.map((L, b) =>
    tf.gather(
      tf.squeeze(tf.slice(x, [b, 0, 0], [1, Lp, -1]), [0]),
      Array.from({ length: Lp }, (_, t) => (t < L ? L - 1 - t : t)),
    ),
  );
  return tf.stack(rows) as tf.Tensor3D;
}

test('the packed bi-GRU and its hand-written gradient match a plain GRU under autodiff (unsorted lengths)', () => {
  const c = defaultModelConfig({ vocabSize: 30, wordDim: 6, embedSize: 5 });
  const reg = ParamRegistry.init(c, 4);
  const lengths = [3, 6, 1, 4]; // not sorted: the packing orders them itself
  const Lp = 6;
  const ids = new Int32Array(lengths.length * Lp);
  lengths.forEach((L, b) => {
    for (let t = 0; t < L; t++) ids[b * Lp + t] = 1 + ((b * 7 + t * 3) % 29);
  });
  const names = reg
    .trainable()
    .map((e) => e.spec.name)
    .filter((n) => n.startsWith('txt_enc.'));
  assert.equal(names.length, 9, `the embedding and both GRU directions' 4 tensors each: ${names.join(', ')}`);
  const params = names.map((n) => reg.get(n));
  const dy = tf.randomNormal([lengths.length, Lp, c.embedSize], 0, 1, 'float32', 9);
  const mask = tf.tensor3d(
    Float32Array.from(ids, (v) => (v > 0 ? 1 : 0)),
    [lengths.length, Lp, 1],
  );
  const withNames = (ps: tf.Tensor[]) => new Map(names.map((n, i) => [n, ps[i]]));
  const mine = (...ps: tf.Tensor[]) => {
    const m = withNames(ps);
    const w = new Weights((n) => m.get(n) ?? reg.get(n));
    const out = encodeCaptions(w, { ids, lengths, maxLen: Lp }, { ...c, noTxtNorm: true }, evalMode());
    return tf.sum(tf.mul(out, dy));
  };
  const plain = (...ps: tf.Tensor[]) => {
    const m = withNames(ps);
    const p = (k: string) => m.get(`txt_enc.${k}`)!;
    const x = tf
      .gather(p('embed.weight'), tf.tensor1d(ids, 'int32'))
      .reshape<tf.Tensor3D>([lengths.length, Lp, c.wordDim]);
    const fwd = plainGru(
      x,
      p('cap_rnn.weight_ih_l0'),
      p('cap_rnn.weight_hh_l0'),
      p('cap_rnn.bias_ih_l0'),
      p('cap_rnn.bias_hh_l0'),
    );
    const back = plainGru(
      reverseWithin(x, lengths),
      p('cap_rnn.weight_ih_l0_reverse'),
      p('cap_rnn.weight_hh_l0_reverse'),
      p('cap_rnn.bias_ih_l0_reverse'),
      p('cap_rnn.bias_hh_l0_reverse'),
    );
    const out = tf.mul(tf.mul(tf.add(fwd, reverseWithin(back, lengths)), 0.5), mask);
    return tf.sum(tf.mul(out, dy));
  };
  const a = tf.grads(mine)(params);
  const b = tf.grads(plain)(params);
  assert.ok(Math.abs(mine(...params).dataSync()[0] - plain(...params).dataSync()[0]) <= 1e-5, 'forward');
  names.forEach((n, i) => {
    const e = maxAbsDiff(a[i].dataSync(), b[i].dataSync());
    assert.ok(e <= 1e-5, `${n}: gradient off by ${e}`);
  });
  assert.ok(Math.max(...Array.from(a[names.indexOf('txt_enc.cap_rnn.weight_hh_l0')].dataSync(), Math.abs)) > 1e-3);
  reg.dispose();
});

test('the local similarity block: hand-written gradient = autodiff of its forward', () => {
  const [nImg, nCap, Lp, K, D, S] = [3, 2, 4, 36, 8, 5];
  const words = tf.randomNormal<tf.Rank.R2>([nCap * Lp, D], 0, 1, 'float32', 1);
  const regions = tf.randomNormal<tf.Rank.R3>([nImg, K, D], 0, 1, 'float32', 2);
  const locW = tf.randomNormal<tf.Rank.R2>([S, D], 0, 0.5, 'float32', 3);
  const locB = tf.randomNormal<tf.Rank.R1>([S], 0, 0.5, 'float32', 4);
  const dy = tf.randomNormal([nImg, nCap * Lp, S], 0, 1, 'float32', 5);
  const shapes = { nCap, Lp };
  const mine = (w: tf.Tensor, r: tf.Tensor, lw: tf.Tensor, lb: tf.Tensor) =>
    tf.sum(
      tf.mul(
        localSimilarity(
          w as tf.Tensor2D,
          r as tf.Tensor3D,
          lw as tf.Tensor2D,
          tf.transpose(lw) as tf.Tensor2D,
          lb as tf.Tensor1D,
          shapes,
        ),
        dy,
      ),
    );
  const auto = (w: tf.Tensor, r: tf.Tensor, lw: tf.Tensor, lb: tf.Tensor) =>
    tf.sum(
      tf.mul(
        localSimilarityEval(
          w as tf.Tensor2D,
          r as tf.Tensor3D,
          tf.transpose(lw) as tf.Tensor2D,
          lb as tf.Tensor1D,
          shapes,
        ),
        dy,
      ),
    );
  const xs = [words, regions, locW, locB];
  const a = tf.grads(mine)(xs);
  const b = tf.grads(auto)(xs);
  ['words', 'regions', 'weight', 'bias'].forEach((n, i) => {
    const scale = Math.max(...Array.from(b[i].dataSync(), Math.abs));
    const e = maxAbsDiff(a[i].dataSync(), b[i].dataSync());
    assert.ok(e <= 1e-4 * Math.max(1, scale), `${n}: gradient off by ${e} (scale ${scale})`);
  });
});

test("SGR's reasoning steps: hand-written gradient = autodiff of the reference's unfolded step", () => {
  const c = defaultModelConfig({ module: 'SGR', vocabSize: 5, embedSize: 8, simDim: 6, sgrStep: 2 });
  const reg = ParamRegistry.init(c, 6);
  const counts = [5, 3, 1];
  const [nImg, nCap, N, S] = [2, counts.length, 5, c.simDim];
  const names = reg
    .trainable()
    .map((e) => e.spec.name)
    .filter((n) => n.startsWith('sim_enc.SGR_module.'));
  assert.equal(names.length, 6 * c.sgrStep, `query, key and graph weight and bias per step: ${names.join(', ')}`);
  const valid = Float32Array.from({ length: nCap * N }, (_, i) => (i % N < counts[Math.floor(i / N)] ? 1 : 0));
  const nodes = tf.mul<tf.Tensor4D>(
    tf.randomNormal([nImg, nCap, N, S], 0, 1, 'float32', 7),
    tf.tensor4d(valid, [1, nCap, N, 1]),
  );
  const dy = tf.randomNormal([nImg, nCap, S], 0, 1, 'float32', 8);
  const layout = {
    nCap,
    count: tf.tensor1d(
      counts.map((n) => n),
      'int32',
    ),
  };
  const byName = (ps: tf.Tensor[]) => new Map(names.map((n, i) => [n, ps[i]]));
  const mine = (x: tf.Tensor, ...ps: tf.Tensor[]) => {
    const m = byName(ps);
    const w = new Weights((n) => m.get(n) ?? reg.get(n));
    const out = graphReasoning(w, c.sgrStep, x as tf.Tensor4D, layout);
    w.dispose();
    return tf.sum(tf.mul(out, dy));
  };
  // the reference's step: every node updated, q and k maps apart, keys masked to the valid nodes
  const validT = tf.tensor2d(valid, [nCap, N]);
  const plain = (x: tf.Tensor, ...ps: tf.Tensor[]) => {
    const m = byName(ps);
    const w = new Weights((n) => m.get(n) ?? reg.get(n));
    return tf.sum(tf.mul(plainGraphReasoning(w, c.sgrStep, x as tf.Tensor4D, validT), dy));
  };
  const xs = [nodes, ...names.map((n) => reg.get(n))];
  const [x0, ...p0] = xs;
  assert.ok(Math.abs(mine(x0, ...p0).dataSync()[0] - plain(x0, ...p0).dataSync()[0]) <= 1e-5, 'forward');
  // (graph_key_w.bias cancels in the softmax: no path in the folded step, a zero gradient from valueAndGradients)
  const a = valueAndGradients((x, ...ps) => mine(x, ...ps), xs).grads;
  const b = valueAndGradients((x, ...ps) => plain(x, ...ps), xs).grads;
  ['nodes', ...names].forEach((n, i) => {
    // padded nodes: the reference has none; their gradient is 0 in both
    const e = maxAbsDiff(a[i].dataSync(), b[i].dataSync());
    const scale = Math.max(1e-3, ...Array.from(b[i].dataSync(), Math.abs));
    assert.ok(e <= 1e-4 * Math.max(1, scale), `${n}: gradient off by ${e} (scale ${scale})`);
  });
  reg.dispose();
});
