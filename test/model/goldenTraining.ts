// The acceptance test of fidelity, training half: the gradient of every parameter judged against the float64
// truth (the golden file's exact/) by the README's one rule, on both paths of the step (chunked and single
// chunk), the clipped Adam step with its BatchNorm statistics, and five steps against the reference's own
// (steps/). Options and sizes come from the file.
//
// Parameters after a step are compared element by element only where the one rule fixes the sign of the true
// gradient (|truth| above its tensor's bound). Elsewhere the rule allows either sign, so Adam's first update,
// lr·g/(|g| + 1e-8), may be anything from -lr to lr in either run and no parameter bound there could fail: those
// elements are judged through their gradient, by the one rule.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../../src/ops/backend.js';
import { lossAndGrads, trainStep, type StepOptions, type TrainBatch } from '../../src/train/step.js';
import { oneThreadEngine } from '../../src/runtime/stepEngine.js';
import { Adam, clipGradNorm } from '../../src/train/adam.js';
import type { ParamRegistry } from '../../src/model/params.js';
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
 * where u is steep. Used only where |t| > bound (the rule fixes the sign); where |t| <= bound it would be about
 * lr·(1 + |u(c·ref)|), the most the two updates can differ, i.e. a bound that cannot fail, so those elements are
 * judged by their gradient instead.
 */
function adamAllowance(lr: number, c: number, t: number, ref: number, bound: number): number {
  const u = (x: number) => (c * x) / (Math.abs(c * x) + 1e-8);
  const mine = Math.max(Math.abs(u(t + bound) - u(t)), Math.abs(u(t - bound) - u(t)));
  return lr * (mine + Math.abs(u(ref) - u(t)));
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

  /**
   * Every gradient tensor against the float64 truth by the one rule (`bounds`: gradientBounds), and the global
   * norm against the truth's. The gradients must be those of exactly the registry's trainable parameters.
   */
  const judgeGradients = (
    t: TestContext,
    truth: GoldenTruth,
    path: string,
    reg: ParamRegistry,
    grads: Map<string, tf.Tensor>,
    bounds: Map<string, number>,
  ) => {
    const trainable = reg
      .trainable()
      .map((e) => e.spec.name)
      .sort();
    assert.ok(trainable.length > 0, 'no trainable parameter');
    assert.deepEqual([...grads.keys()].sort(), trainable, 'a gradient for every parameter');
    assert.deepEqual([...bounds.keys()].sort(), trainable, 'a true gradient for every parameter');
    let sq = 0;
    let sqTruth = 0;
    const verdicts: [string, number, number][] = [];
    for (const [name, grad] of grads) {
      const mine = grad.dataSync() as Float32Array;
      const exact = numbers(truth.exact.get(`grad.${name}`)!);
      verdicts.push([name, maxAbsDiff(mine, exact), bounds.get(name)!]);
      for (let i = 0; i < mine.length; i++) {
        sq += mine[i] * mine[i];
        sqTruth += exact[i] * exact[i];
      }
    }
    const worst = verdicts.map(([n, e, b]) => [n, e / b] as const).sort((a, b) => b[1] - a[1])[0];
    t.diagnostic(
      `${backend} ${module} (${path}): worst gradient at ${(worst[1] * 100).toFixed(0)}% of its bound (${worst[0]})`,
    );
    assert.deepEqual(
      verdicts.filter(([, e, b]) => e > b).map(([n, e, b]) => `${n}: ${e.toExponential(2)} > ${b.toExponential(2)}`),
      [],
      `${path}: gradients outside the one rule`,
    );
    assert.ok(
      rel(Math.sqrt(sq), Math.sqrt(sqTruth)) <= TOL.norm,
      `${path}: grad norm ${Math.sqrt(sq)} vs ${Math.sqrt(sqTruth)}`,
    );
  };
  /** The names after `prefix` in a group: the file's param_after.* or bn_after.* entries. */
  const keysOf = (group: Map<string, unknown>, prefix: string) =>
    [...group.keys()]
      .filter((k) => k.startsWith(prefix))
      .map((k) => k.slice(prefix.length))
      .sort();
  /** The small sim_enc parameters the reference saved after its steps: every trainable sim_enc parameter. */
  const simEncParams = (reg: ParamRegistry) =>
    reg
      .trainable()
      .map((e) => e.spec.name)
      .filter((n) => n.startsWith('sim_enc.'))
      .sort();

  test(`${module} gradients are within the one rule of the float64 truth (${backend})`, async (t) => {
    const { g, truth } = await loadAll();
    const reg = registryOf(g);
    // through the chunked path with recomputation (chunkBytes 1: one caption per chunk); the Adam test
    // below judges the single-chunk path's gradients by the same rule
    const r = lossAndGrads(reg, g.config, goldenBatch(g), { ...stepOptions(g), engine: oneThreadEngine(1) });
    const ex = (k: string) => numbers(truth.exact.get(k)!);
    assert.ok(maxAbsDiff(r.sims, ex('sims')) <= TOL.sims, 'train-mode sims against the truth');
    assert.ok(rel(r.hinge, ex('hinge_loss')[0]) <= TOL.hinge, `hinge ${r.hinge} vs ${ex('hinge_loss')[0]}`);
    assert.ok(rel(r.semantic, ex('vsl_loss')[0]) <= TOL.vsl, `vsl ${r.semantic} vs ${ex('vsl_loss')[0]}`);
    judgeGradients(t, truth, 'chunked', reg, r.grads, gradientBounds(g, truth));
    tf.dispose([...r.grads.values()]);
    for (const s of [...r.bnStats, ...r.captionStats]) tf.dispose([s.mean, s.varUnbiased]);
    reg.dispose();
  });

  test(`${module} one clipped Adam step and its BatchNorm statistics match the reference (${backend})`, async (t) => {
    const { g, truth } = await loadAll();
    const o = stepOptions(g);
    const batch = goldenBatch(g);
    const tr = (k: string) => numbers(g.train.get(k)!);
    const bounds = gradientBounds(g, truth);
    const reg = registryOf(g);
    const params = simEncParams(reg);
    assert.ok(params.length > 0, 'no sim_enc parameter');
    assert.deepEqual(keysOf(g.train, 'param_after.'), params, 'train/param_after.*: every trainable sim_enc parameter');
    const buffers = [...reg.entries.values()]
      .filter((e) => !e.trainable)
      .map((e) => e.spec.name)
      .sort();
    assert.ok(buffers.length > 0, 'no BatchNorm statistics');
    assert.deepEqual(keysOf(g.train, 'bn_after.'), buffers, 'train/bn_after.*: every BatchNorm statistic');
    // The single-chunk path's gradients, by the one rule: the gradients trainStep computes with these options.
    const r = lossAndGrads(reg, g.config, batch, o);
    judgeGradients(t, truth, 'single chunk', reg, r.grads, bounds);
    for (const s of [...r.bnStats, ...r.captionStats]) tf.dispose([s.mean, s.varUnbiased]);
    // what trainStep must do with them: clip, then one Adam step
    const expected = registryOf(g);
    const adamExpected = new Adam(o.lr);
    const clippedMine = clipGradNorm(r.grads, o.gradClip);
    adamExpected.apply(expected, clippedMine.grads);
    tf.dispose([...r.grads.values(), ...clippedMine.grads.values()]);
    const adam = new Adam(o.lr);
    const step = trainStep(reg, g.config, adam, batch, o);
    assert.equal(step.gradNorm, clippedMine.norm, 'trainStep clips the gradients judged above');
    for (const e of reg.trainable()) {
      const err = maxAbsDiff(reg.get(e.spec.name).dataSync(), expected.get(e.spec.name).dataSync());
      assert.equal(err, 0, `${e.spec.name}: trainStep's update differs from Adam on the judged gradients by ${err}`);
    }
    const normRef = tr('grad_total_norm')[0];
    assert.ok(rel(step.gradNorm, normRef) <= TOL.norm, `grad norm ${step.gradNorm} vs ${normRef}`);
    // The parameters against the reference's, where the one rule fixes the sign of the true gradient; the other
    // elements (the rule allows their update to be anything in [-lr, lr]) were judged through their gradient above.
    const c = Math.min(1, o.gradClip / (normRef + 1e-6));
    let compared = 0;
    let byGradient = 0;
    for (const name of params) {
      const mine = reg.get(name).dataSync() as Float32Array;
      const ref = tr(`param_after.${name}`);
      assert.equal(mine.length, ref.length, name);
      const gt = numbers(truth.exact.get(`grad.${name}`)!);
      const gr = tr(`grad.${name}`);
      const gb = bounds.get(name)!;
      for (let i = 0; i < ref.length; i++) {
        if (Math.abs(gt[i]) <= gb) {
          byGradient++;
          continue;
        }
        compared++;
        const bound = TOL.param + adamAllowance(o.lr, c, gt[i], gr[i], gb);
        const err = Math.abs(mine[i] - ref[i]);
        if (err > bound) assert.fail(`${name}[${i}] after the step: ${err} > ${bound} (true gradient ${gt[i]})`);
      }
    }
    assert.ok(compared > 0, 'no parameter element compared');
    t.diagnostic(
      `${backend} ${module}: after one step, ${compared} parameter elements compared, ${byGradient} (true gradient within its bound of zero) judged by their gradient`,
    );
    for (const name of buffers) {
      const err = maxAbsDiff(reg.get(name).dataSync(), tr(`bn_after.${name}`));
      assert.ok(err <= TOL.bn, `${name} after the step: ${err}`);
    }
    // the optimizer alone, on the reference's own gradients: clip and one Adam step
    const reg2 = registryOf(g);
    const adam2 = new Adam(o.lr);
    const refGrads = new Map(
      [...reg2.trainable()].map((e) => [e.spec.name, tf.tensor(tr(`grad.${e.spec.name}`), e.spec.shape)] as const),
    );
    const clipped = clipGradNorm(refGrads, o.gradClip);
    adam2.apply(reg2, clipped.grads);
    tf.dispose([...refGrads.values(), ...clipped.grads.values()]);
    for (const name of params) {
      const err = maxAbsDiff(reg2.get(name).dataSync(), tr(`param_after.${name}`));
      assert.ok(err <= TOL.param, `Adam on the reference gradients: ${name}: ${err}`);
    }
    // a second forward after the step, still in train mode
    const after = lossAndGrads(reg, g.config, batch, o);
    tf.dispose([...after.grads.values()]);
    for (const s of [...after.bnStats, ...after.captionStats]) tf.dispose([s.mean, s.varUnbiased]);
    assert.ok(maxAbsDiff(after.sims, tr('sims_after_step')) <= TOL.sims, 'sims after the step');
    assert.ok(rel(after.hinge, tr('hinge_after_step')[0]) <= TOL.hinge, 'hinge after the step');
    assert.ok(rel(after.semantic, tr('vsl_after_step')[0]) <= TOL.vsl, 'vsl after the step');
    for (const x of [reg, reg2, expected]) x.dispose();
    for (const x of [adam, adam2, adamExpected]) x.dispose();
  });

  test(`${module} five training steps follow the reference's (${backend})`, async (t) => {
    const { g, truth } = await loadAll();
    const o = stepOptions(g);
    const batch = goldenBatch(g);
    const st = (k: string) => numbers(truth.steps.get(k)!);
    const reg = registryOf(g);
    const adam = new Adam(o.lr);
    const n = st('total').length;
    assert.equal(n, 5, 'steps/: five reference steps');
    for (const k of ['hinge', 'vsl', 'grad_norm']) assert.equal(st(k).length, n, `steps/${k}: one value per step`);
    const params = simEncParams(reg);
    assert.ok(params.length > 0, 'no sim_enc parameter');
    assert.deepEqual(
      keysOf(truth.steps, 'param_after.'),
      params,
      'steps/param_after.*: every trainable sim_enc parameter',
    );
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
    for (const s of [...after.bnStats, ...after.captionStats]) tf.dispose([s.mean, s.varUnbiased]);
    const simsErr = maxAbsDiff(after.sims, st('sims_after'));
    assert.ok(simsErr <= TOL.steps.simsAfter, `sims after ${n} steps: ${simsErr}`);
    // Parameters after the steps, where the one rule fixes the sign of the true first-step gradient: within
    // TOL.param per step. An element whose true gradient is within its tensor's bound of zero may move by up to lr
    // per step in either direction in either run: it is judged through its gradient, by the one rule, in the tests
    // above.
    const bounds = gradientBounds(g, truth);
    const bound: number = n * TOL.param;
    const worstParam = { name: '', err: 0, bound };
    let compared = 0;
    let byGradient = 0;
    for (const name of params) {
      const mine = reg.get(name).dataSync() as Float32Array;
      const ref = st(`param_after.${name}`);
      assert.equal(mine.length, ref.length, name);
      const gt = numbers(truth.exact.get(`grad.${name}`)!);
      const gb = bounds.get(name)!;
      for (let i = 0; i < ref.length; i++) {
        if (Math.abs(gt[i]) <= gb) {
          byGradient++;
          continue;
        }
        compared++;
        const err = Math.abs(mine[i] - ref[i]);
        if (err / bound > worstParam.err / worstParam.bound)
          Object.assign(worstParam, { name: `${name}[${i}]`, err, bound });
        if (err > bound)
          assert.fail(`${name}[${i}] after ${n} steps: ${err} > ${bound} (true first gradient ${gt[i]})`);
      }
    }
    assert.ok(compared > 0, 'no parameter element compared');
    t.diagnostic(
      `${backend} ${module}: parameters after ${n} steps: ${compared} elements compared, worst ${worstParam.name} at ${((100 * worstParam.err) / worstParam.bound).toFixed(0)}% of its bound; ${byGradient} judged by their gradient`,
    );
    reg.dispose();
    adam.dispose();
  });
}
