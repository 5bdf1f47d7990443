// The acceptance test of fidelity, forward half: vsl's eval-mode forward, losses and soft ranks against the
// reference's own outputs (test/fixtures/golden), with the tolerances of its README, on one backend per test
// process. Sizes, dims and options come from the file, so a golden file made at other dims passes unchanged.
// The training half (gradients against the float64 truth, Adam, five steps) is goldenTraining.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendName } from '../../src/ops/backend.js';
import { Weights } from '../../src/model/weights.js';
import { forwardSims } from '../../src/model/sgraf.js';
import { evalMode } from '../../src/model/encoders.js';
import { hingeLoss } from '../../src/loss/hinge.js';
import { rankAgreementLoss, rankMatrix } from '../../src/loss/semantic.js';
import {
  goldenImages,
  goldenTokens,
  goldenTrainOptions,
  loadGolden,
  numbers,
  registryOf,
  type Golden,
} from '../helpers/golden.js';
import { maxAbsDiff } from '../helpers/asserts.js';
import { goldenTraining } from './goldenTraining.js';

export const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** The golden README's tolerances (float32). */
const TOL = { forward: 1e-5, hinge: 1e-5, softRank: 1e-3, cider: 1e-5 };

export function goldenSuite(backend: BackendName): void {
  for (const module of ['SGR', 'SAF'] as const) {
    let g: Golden;
    const load = async () => {
      await selectBackend(backend);
      g ??= await loadGolden(module);
      return g;
    };

    test(`${module} eval forward matches the reference (${backend})`, async (t) => {
      const g = await load();
      const reg = registryOf(g);
      const dbg = new Map<string, { data: Float32Array; shape: number[] }>();
      const r = forwardSims(Weights.of(reg), g.config, goldenImages(g), goldenTokens(g), evalMode(), (n, x) =>
        dbg.set(n, { data: x.dataSync() as Float32Array, shape: x.shape }),
      );
      const out = (k: string) => numbers(g.outputs.get(k)!);
      const errs: Record<string, number> = {};
      const nImg = g.inputs.get('images')!.shape[0];
      const nCap = g.inputs.get('captions')!.shape[0];
      errs[`sims_${nImg}x${nCap}`] = maxAbsDiff(r.sims.dataSync(), out(`sims_${nImg}x${nCap}`));
      errs.img_emb = maxAbsDiff(dbg.get('img_emb')!.data, out('img_emb'));
      errs.cap_emb = maxAbsDiff(dbg.get('cap_emb')!.data, out('cap_emb'));
      errs.v_global = maxAbsDiff(dbg.get('v_global')!.data, out('dbg.v_global'));
      const lengths = goldenTokens(g).lengths;
      const S = g.config.simDim;
      const D = g.config.embedSize;
      // caption k's first `rows` rows of a (nImg, nCap, [rows per pair,] width) block tensor, image by image,
      // in the reference's per-caption layout
      const take = (name: string, k: number, rows: number, width: number) => {
        const { data, shape } = dbg.get(name)!;
        const perPairRows = shape.length === 4 ? shape[2] : 1;
        const res: number[] = [];
        for (let m = 0; m < nImg; m++) {
          const base = (m * nCap + k) * perPairRows * width;
          for (let i = 0; i < rows * width; i++) res.push(data[base + i]);
        }
        return res;
      };
      for (let k = 0; k < nCap; k++) {
        const L = lengths[k];
        const tg = dbg.get('t_global_w')!.data.subarray(k * D, (k + 1) * D);
        errs[`t_global.cap${k}`] = maxAbsDiff(tg, out(`dbg.t_global_w.cap${k}`));
        errs[`sim_tranloc_w.cap${k}`] = maxAbsDiff(take('sim_tranloc_w', k, L, S), out(`dbg.sim_tranloc_w.cap${k}`));
        errs[`sim_tranglo_w.cap${k}`] = maxAbsDiff(take('sim_tranglo_w', k, 1, S), out(`dbg.sim_tranglo_w.cap${k}`));
        errs[`sim_eval_w.cap${k}`] = maxAbsDiff(take('sim_eval_w', k, 1, 1), out(`dbg.sim_eval_w.cap${k}`));
        if (module === 'SGR') {
          for (let s = 0; s < g.config.sgrStep; s++) {
            // every node after the inner steps; only node 0 (what the score reads) after the last one
            const rows = s === g.config.sgrStep - 1 ? 1 : L + 1;
            const ref = out(`dbg.SGR_module.${s}.cap${k}`);
            const refRows = ref.filter((_, i) => i % ((L + 1) * S) < rows * S);
            errs[`SGR_module.${s}.cap${k}`] = maxAbsDiff(take(`SGR_module.${s}`, k, rows, S), refRows);
          }
        } else {
          errs[`SAF_module.cap${k}`] = maxAbsDiff(take('SAF_module', k, 1, S), out(`dbg.SAF_module.cap${k}`));
        }
      }
      const worst = Object.entries(errs).sort((a, b) => b[1] - a[1])[0];
      t.diagnostic(
        `${backend} ${module}: worst eval-mode error ${worst[1].toExponential(2)} (${worst[0]}), tolerance ${TOL.forward}`,
      );
      for (const [k, e] of Object.entries(errs))
        assert.ok(e <= TOL.forward, `${k}: max abs error ${e} > ${TOL.forward}`);
      reg.dispose();
    });

    test(`${module} losses and soft ranks match the reference (${backend})`, async (t) => {
      const g = await load();
      const { margin, maxViolation } = goldenTrainOptions(g);
      const square = (name: string) => {
        const a = g.outputs.get(name)!;
        return tf.tensor2d(numbers(a), a.shape as [number, number]);
      };
      const nCap = g.inputs.get('captions')!.shape[0];
      const sims = square(`sims_${nCap}x${nCap}`); // the captions with their own images: the batch the losses see
      const cider = square('image_cider');
      const hinge = hingeLoss(sims, margin, maxViolation).dataSync()[0];
      const vsl = rankAgreementLoss(sims, cider).dataSync()[0];
      const num = (k: string) => numbers(g.outputs.get(k)!)[0];
      const scoreRank = numbers(g.outputs.get('score_rank')!);
      const rankErr = Math.max(...Array.from(rankMatrix(sims).dataSync(), (v, i) => rel(v, scoreRank[i])));
      const ciderErr = maxAbsDiff(rankMatrix(cider).dataSync(), numbers(g.outputs.get('cider_rank')!));
      t.diagnostic(
        `${backend} ${module}: hinge rel ${rel(hinge, num('hinge_loss')).toExponential(2)}, vsl rel ${rel(vsl, num('vsl_loss')).toExponential(2)}, score_rank rel ${rankErr.toExponential(2)}`,
      );
      assert.ok(rel(hinge, num('hinge_loss')) <= TOL.hinge, `hinge ${hinge} vs ${num('hinge_loss')}`);
      assert.ok(rel(vsl, num('vsl_loss')) <= TOL.softRank, `vsl ${vsl} vs ${num('vsl_loss')}`);
      assert.ok(rel(hinge + vsl, num('total_loss')) <= TOL.softRank, 'total loss');
      // the file's second square case (sims_nxn with its hinge_loss_nxn)
      const n = Number([...g.outputs.keys()].find((k) => /^hinge_loss_\d+x\d+$/.test(k))!.split('x')[1]);
      const small = square(`sims_${n}x${n}`);
      const hingeSmall = hingeLoss(small, margin, maxViolation).dataSync()[0];
      assert.ok(rel(hingeSmall, num(`hinge_loss_${n}x${n}`)) <= TOL.hinge, `hinge ${n}x${n} ${hingeSmall}`);
      assert.ok(rankErr <= TOL.softRank, `score_rank relative error ${rankErr}`);
      assert.ok(ciderErr <= TOL.cider, `cider_rank error ${ciderErr}`);
    });

    goldenTraining(backend, module, load);
  }
}
