// The acceptance test of fidelity, training half: the gradient of every parameter judged against the float64
// truth (the golden file's exact/) by the README's one rule, the clipped Adam step with its BatchNorm
// statistics, and five steps against the reference's own (steps/). Options and sizes come from the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../../src/engine/backend.js';
import { lossAndGrads, trainStep, type StepOptions, type TrainBatch } from '../../src/train/step.js';
import { oneThreadEngine } from '../../src/engine/stepEngine.js';
import { Adam, clipGradNorm } from '../../src/train/adam.js';
import {
  goldenImages,
  goldenTokens,
  goldenTrainOptions,
  gradientBounds,
  loadGoldenTruth,
  numbers,
  registryOf,
  type Golden,
  type GoldenTruth,
} from '../helpers/golden.js';
import { maxAbsDiff } from '../helpers/asserts.js';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** The golden README's tolerances for the training outputs. */
const TOL = {
  sims: 1e-5, // train-mode scores, max abs
  hinge: 1e-5, // relative
  vsl: 1e-3, // relative: the soft rank's 1/τ = 1000 amplifies score rounding
  norm: 1e-4, // global gradient norm, relative to the truth's
  param: 1e-6, // parameters after the Adam step, max abs, before the gradient-derived allowance below
  bn: 1e-5, // BatchNorm running statistics after the step
  steps: { hinge: 1e-4, vsl: 1e-3, gradNorm: 1e-3, simsAfter: 1e-4 },
};

/** The golden training batch: each caption with its own image, the batch's TF-IDF image similarities. */
function goldenBatch(g: Golden): TrainBatch {
  const imgOfCap = numbers(g.inputs.get('img_of_cap')!);
  return {
    images: goldenImages(g, imgOfCap).dataSync() as Float32Array,
    tokens: goldenTokens(g),
    imageSim: Float32Array.from(numbers(g.outputs.get('image_cider')!)),
    captionSim: null,
  };
}

/**
 * How far one clipped Adam step may move an element beyond TOL.param, derived from the gradient rule, never
 * measured. The first step moves p by lr·u(c·g), u(x) = x/(|x| + 1e-8), c the clip coefficient. vsl's gradient
 * is within `bound` of the truth t, the reference's is at its own distance from t, so the two updates may differ
 * by lr·(max over ±bound of |u(c(t±bound)) - u(ct)| + |u(c·ref) - u(ct)|): large only where |g| is near 1e-8/c,
 * where u is steep (the zero-in-theory tensors, whose updates are rounding noise of up to lr).
 */
function adamAllowance(lr: number, c: number, t: number, ref: number, bound: number): number {
  const u = (x: number) => (c * x) / (Math.abs(c * x) + 1e-8);
  const mine = Math.max(Math.abs(u(t + bound) - u(t)), Math.abs(u(t - bound) - u(t)));
  return lr * (mine + Math.abs(u(ref) - u(t)));
}

/**
 * The most one Adam step can move an element, in units of lr, over the first `steps` steps: |m̂| / sqrt(v̂) is at
 * most sqrt(Σ wᵢ²/uᵢ) by Cauchy-Schwarz, wᵢ and uᵢ the bias-corrected weights of the two moving averages.
 */
function adamStepLimit(steps: number, b1 = 0.9, b2 = 0.999): number {
  let worst = 0;
  for (let t = 1; t <= steps; t++) {
    let s = 0;
    for (let i = 1; i <= t; i++) {
      const w = ((1 - b1) * b1 ** (t - i)) / (1 - b1 ** t);
      const u = ((1 - b2) * b2 ** (t - i)) / (1 - b2 ** t);
      s += (w * w) / u;
    }
    worst = Math.max(worst, Math.sqrt(s));
  }
  return worst;
}

export function goldenTraining(backend: BackendName, module: 'SGR' | 'SAF', load: () => Promise<Golden>): void {
  let truth: GoldenTruth;
  const loadAll = async () => {
    const g = await load();
    truth ??= await loadGoldenTruth(module);
    return { g, truth };
  };
  const stepOptions = (g: Golden): StepOptions & { lr: number } => {
    const { lr, ...o } = goldenTrainOptions(g);
    // the golden train files set every dropout probability to 0
    return { ...o, lr, semantic: 'visual', dropout: 0, engine: oneThreadEngine(1 << 24), seed: 1 };
  };

  test(`${module} gradients are within the one rule of the float64 truth (${backend})`, async (t) => {
    const { g, truth } = await loadAll();
    const reg = registryOf(g);
    // through the chunked path with recomputation (chunkBytes 1: one caption per chunk); the Adam test
    // below runs the single-chunk path, so both are held to the truth
    const r = lossAndGrads(reg, g.config, goldenBatch(g), { ...stepOptions(g), engine: oneThreadEngine(1) });
    const ex = (k: string) => numbers(truth.exact.get(k)!);
    assert.ok(maxAbsDiff(r.sims, ex('sims')) <= TOL.sims, 'train-mode sims against the truth');
    assert.ok(rel(r.hinge, ex('hinge_loss')[0]) <= TOL.hinge, `hinge ${r.hinge} vs ${ex('hinge_loss')[0]}`);
    assert.ok(rel(r.semantic, ex('vsl_loss')[0]) <= TOL.vsl, `vsl ${r.semantic} vs ${ex('vsl_loss')[0]}`);
    const bounds = gradientBounds(g, truth);
    assert.deepEqual([...r.grads.keys()].sort(), [...bounds.keys()].sort(), 'a gradient for every parameter');
    let sq = 0;
    let sqTruth = 0;
    const verdicts: [string, number, number][] = [];
    for (const [name, grad] of r.grads) {
      const mine = grad.dataSync() as Float32Array;
      const exact = ex(`grad.${name}`);
      for (let i = 0; i < mine.length; i++) {
        sq += mine[i] * mine[i];
        sqTruth += exact[i] * exact[i];
      }
      verdicts.push([name, maxAbsDiff(mine, exact), bounds.get(name)!]);
    }
    tf.dispose([...r.grads.values()]);
    for (const s of [...r.bnStats, ...r.safStats]) tf.dispose([s.mean, s.varUnbiased]);
    const worst = verdicts.map(([n, e, b]) => [n, e / b] as const).sort((a, b) => b[1] - a[1])[0];
    t.diagnostic(`${backend} ${module}: worst gradient at ${(worst[1] * 100).toFixed(0)}% of its bound (${worst[0]})`);
    assert.deepEqual(
      verdicts.filter(([, e, b]) => e > b).map(([n, e, b]) => `${n}: ${e.toExponential(2)} > ${b.toExponential(2)}`),
      [],
    );
    assert.ok(
      rel(Math.sqrt(sq), Math.sqrt(sqTruth)) <= TOL.norm,
      `grad norm ${Math.sqrt(sq)} vs ${Math.sqrt(sqTruth)}`,
    );
    reg.dispose();
  });

  test(`${module} one clipped Adam step and its BatchNorm statistics match the reference (${backend})`, async () => {
    const { g, truth } = await loadAll();
    const o = stepOptions(g);
    const batch = goldenBatch(g);
    const tr = (k: string) => numbers(g.train.get(k)!);
    const bounds = gradientBounds(g, truth);
    const reg = registryOf(g);
    const adam = new Adam(o.lr);
    const step = trainStep(reg, g.config, adam, batch, o);
    const normRef = tr('grad_total_norm')[0];
    assert.ok(rel(step.gradNorm, normRef) <= TOL.norm, `grad norm ${step.gradNorm} vs ${normRef}`);
    const c = Math.min(1, o.gradClip / (normRef + 1e-6));
    for (const [k] of g.train) {
      if (k.startsWith('param_after.')) {
        const name = k.slice('param_after.'.length);
        const mine = reg.get(name).dataSync() as Float32Array;
        const ref = tr(k);
        const gt = numbers(truth.exact.get(`grad.${name}`)!);
        const gr = tr(`grad.${name}`);
        for (let i = 0; i < ref.length; i++) {
          const bound = TOL.param + adamAllowance(o.lr, c, gt[i], gr[i], bounds.get(name)!);
          const err = Math.abs(mine[i] - ref[i]);
          if (err > bound) assert.fail(`${name}[${i}] after the step: ${err} > ${bound} (true gradient ${gt[i]})`);
        }
      }
      if (k.startsWith('bn_after.')) {
        const name = k.slice('bn_after.'.length);
        const err = maxAbsDiff(reg.get(name).dataSync() as Float32Array, tr(k));
        assert.ok(err <= TOL.bn, `${name} after the step: ${err}`);
      }
    }
    // the optimizer alone, on the reference's own gradients: clip and one Adam step
    const reg2 = registryOf(g);
    const adam2 = new Adam(o.lr);
    const refGrads = new Map(
      [...reg2.trainable()].map((e) => [e.spec.name, tf.tensor(tr(`grad.${e.spec.name}`), e.spec.shape)] as const),
    );
    const clipped = clipGradNorm(refGrads, o.gradClip);
    adam2.apply(reg2, clipped.grads);
    tf.dispose([...clipped.grads.values()]);
    for (const [k] of g.train) {
      if (!k.startsWith('param_after.')) continue;
      const name = k.slice('param_after.'.length);
      const err = maxAbsDiff(reg2.get(name).dataSync() as Float32Array, tr(k));
      assert.ok(err <= TOL.param, `Adam on the reference gradients: ${name}: ${err}`);
    }
    // a second forward after the step, still in train mode
    const after = lossAndGrads(reg, g.config, batch, o);
    tf.dispose([...after.grads.values()]);
    for (const s of [...after.bnStats, ...after.safStats]) tf.dispose([s.mean, s.varUnbiased]);
    assert.ok(maxAbsDiff(after.sims, tr('sims_after_step')) <= TOL.sims, 'sims after the step');
    assert.ok(rel(after.hinge, tr('hinge_after_step')[0]) <= TOL.hinge, 'hinge after the step');
    assert.ok(rel(after.semantic, tr('vsl_after_step')[0]) <= TOL.vsl, 'vsl after the step');
    for (const x of [reg, reg2]) x.dispose();
    for (const x of [adam, adam2]) x.dispose();
  });

  test(`${module} five training steps follow the reference's (${backend})`, async (t) => {
    const { g, truth } = await loadAll();
    const o = stepOptions(g);
    const batch = goldenBatch(g);
    const st = (k: string) => numbers(truth.steps.get(k)!);
    const reg = registryOf(g);
    const adam = new Adam(o.lr);
    const n = st('total').length;
    const worst = { hinge: 0, vsl: 0, gradNorm: 0 };
    for (let k = 0; k < n; k++) {
      const r = trainStep(reg, g.config, adam, batch, o);
      const e = {
        hinge: rel(r.hinge, st('hinge')[k]),
        vsl: rel(r.semantic, st('vsl')[k]),
        gradNorm: rel(r.gradNorm, st('grad_norm')[k]),
      };
      for (const key of ['hinge', 'vsl', 'gradNorm'] as const) {
        worst[key] = Math.max(worst[key], e[key]);
        assert.ok(e[key] <= TOL.steps[key], `step ${k + 1}: ${key} relative error ${e[key]} > ${TOL.steps[key]}`);
      }
    }
    t.diagnostic(
      `${backend} ${module}: ${n} steps, worst relative error hinge ${worst.hinge.toExponential(2)}, vsl ${worst.vsl.toExponential(2)}, grad norm ${worst.gradNorm.toExponential(2)}`,
    );
    const after = lossAndGrads(reg, g.config, batch, o);
    tf.dispose([...after.grads.values()]);
    for (const s of [...after.bnStats, ...after.safStats]) tf.dispose([s.mean, s.varUnbiased]);
    const simsErr = maxAbsDiff(after.sims, st('sims_after'));
    assert.ok(simsErr <= TOL.steps.simsAfter, `sims after ${n} steps: ${simsErr}`);
    // Parameters after the steps. An element whose true first-step gradient is within its tensor's bound of zero
    // has no float32-resolvable sign: Adam moves it by rounding noise, up to adamStepLimit·lr per step in either
    // run. Every other element must agree to TOL.param per step.
    const bounds = gradientBounds(g, truth);
    const limit = adamStepLimit(n);
    const worstParam = { name: '', err: 0, bound: 1 };
    for (const [k] of truth.steps) {
      if (!k.startsWith('param_after.')) continue;
      const name = k.slice('param_after.'.length);
      const mine = reg.get(name).dataSync() as Float32Array;
      const ref = st(k);
      const gt = numbers(truth.exact.get(`grad.${name}`)!);
      const gb = bounds.get(name)!;
      for (let i = 0; i < ref.length; i++) {
        const bound = Math.abs(gt[i]) <= gb ? 2 * n * limit * o.lr : n * TOL.param;
        const err = Math.abs(mine[i] - ref[i]);
        if (err / bound > worstParam.err / worstParam.bound)
          Object.assign(worstParam, { name: `${name}[${i}]`, err, bound });
        if (err > bound)
          assert.fail(`${name}[${i}] after ${n} steps: ${err} > ${bound} (true first gradient ${gt[i]})`);
      }
    }
    t.diagnostic(
      `${backend} ${module}: parameters after ${n} steps: worst ${worstParam.name} at ${((100 * worstParam.err) / worstParam.bound).toFixed(0)}% of its bound`,
    );
    reg.dispose();
    adam.dispose();
  });
}
