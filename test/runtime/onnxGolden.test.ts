// The three ONNX graphs of the golden models (../shared/golden, SGR and SAF at tiny dims) against the reference's
// own outputs and against vsl's tfjs forward, within the golden README's 1e-5 (max abs): the encoders' outputs,
// the global vectors, the local and global similarity vectors per caption (dbg.*), and the scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Weights } from '../../src/model/weights.js';
import { evalMode } from '../../src/model/encoders.js';
import { forwardSims } from '../../src/model/sgraf.js';
import { exportGraphs } from '../../src/runtime/onnx/graphs.js';
import { HostWeights } from '../../src/runtime/onnx/hostWeights.js';
import { blockDims, localVectors, globalVectors } from '../../src/runtime/onnx/similarityGraph.js';
import { createSession, f32Tensor, i32Tensor, outputData } from '../../src/runtime/onnx/session.js';
import { goldenImages, goldenTokens, loadGolden, numbers, registryOf } from '../helpers/golden.js';
import { leadingRows, maxAbs, runBlock, useCpu } from './onnxHelpers.js';

const TOL = 1e-5;

for (const module of ['SGR', 'SAF'] as const) {
  test(`ONNX graphs of the golden ${module} model match the reference and tfjs`, async (t) => {
    await useCpu();
    const g = await loadGolden(module);
    const reg = registryOf(g);
    const c = g.config;
    const graphs = exportGraphs(reg, c, { source: 'golden weights' });
    const out = (k: string) => numbers(g.outputs.get(k)!);
    const images = goldenImages(g);
    const tokens = goldenTokens(g);
    const [nImg] = images.shape;
    const nCap = tokens.lengths.length;
    const lengths = i32Tensor(Int32Array.from(tokens.lengths), [nCap]);

    const image = await createSession({ bytes: graphs.image, name: 'image' });
    const io = await image.run({ images: f32Tensor(images.dataSync() as Float32Array, images.shape) });
    const caption = await createSession({ bytes: graphs.caption, name: 'caption' });
    const co = await caption.run({ ids: i32Tensor(tokens.ids, [nCap, tokens.maxLen]), lengths });
    // the same caption graph with int64 token ids
    const caption64 = await createSession({
      bytes: exportGraphs(reg, c, { idType: 'int64' }).caption,
      name: 'caption64',
    });
    const ids64 = BigInt64Array.from(tokens.ids, (v) => BigInt(v));
    const co64 = await caption64.run({ ids: new ort.Tensor('int64', ids64, [nCap, tokens.maxLen]), lengths });
    const score = await createSession({ bytes: graphs.score, name: 'score' });
    const so = await score.run({ ...io, ...co, lengths });

    // vsl's tfjs forward of the same model
    const tfOut = new Map<string, Float32Array>();
    const w = Weights.of(reg);
    const r = forwardSims(w, c, images, tokens, evalMode(), (n, x) => tfOut.set(n, x.dataSync() as Float32Array));
    const tfSims = r.sims.dataSync();

    const D = c.embedSize;
    const S = c.simDim;
    const ref: Record<string, number> = {};
    const tfj: Record<string, number> = {};
    ref.img_emb = maxAbs(outputData(io, 'regions'), out('img_emb'));
    tfj.img_emb = maxAbs(outputData(io, 'regions'), tfOut.get('img_emb')!);
    ref.v_global = maxAbs(outputData(io, 'vGlobal'), out('dbg.v_global'));
    tfj.v_global = maxAbs(outputData(io, 'vGlobal'), tfOut.get('v_global')!);
    ref.cap_emb = maxAbs(outputData(co, 'words'), out('cap_emb'));
    tfj.cap_emb = maxAbs(outputData(co, 'words'), tfOut.get('cap_emb')!);
    ref['cap_emb (int64 ids)'] = maxAbs(outputData(co64, 'words'), out('cap_emb'));
    const tg = outputData(co, 'tGlobal');
    ref.t_global = Math.max(
      ...tokens.lengths.map((_, k) => maxAbs(tg.subarray(k * D, (k + 1) * D), out(`dbg.t_global_w.cap${k}`))),
    );
    tfj.t_global = maxAbs(tg, tfOut.get('t_global_w')!);
    ref[`sims_${nImg}x${nCap}`] = maxAbs(outputData(so, 'sims'), out(`sims_${nImg}x${nCap}`));
    tfj.sims = maxAbs(outputData(so, 'sims'), tfSims);

    // the similarity vectors of each caption before their l2norm (the reference's dbg.sim_tranloc_w.capK, ...)
    const hw = HostWeights.fromRegistry(reg);
    const host = (x: { data: unknown; dims: readonly number[] }) => ({
      type: 'float32' as const,
      dims: x.dims.map((_, i) => `d${i}`),
      data: x.data as Float32Array,
      shape: [...x.dims],
    });
    const [loc, glo] = await runBlock(
      { regions: host(io.regions), vGlobal: host(io.vGlobal), words: host(co.words), tGlobal: host(co.tGlobal) },
      (b, i) => {
        const d = blockDims(b, i.regions, i.words);
        return [localVectors(b, hw, i.words, i.regions, d), globalVectors(b, hw, i.vGlobal, i.tGlobal)];
      },
    );
    const Lp = tokens.maxLen;
    let locErr = 0;
    let gloErr = 0;
    for (let k = 0; k < nCap; k++) {
      const L = tokens.lengths[k];
      // image m's rows of caption k: (nImg, nCap·Lp, S) -> rows m·nCap·Lp + k·Lp ... + L
      const mine: number[] = [];
      for (let m = 0; m < nImg; m++)
        mine.push(...loc.data.subarray((m * nCap + k) * Lp * S, ((m * nCap + k) * Lp + L) * S));
      locErr = Math.max(locErr, maxAbs(mine, out(`dbg.sim_tranloc_w.cap${k}`)));
      gloErr = Math.max(
        gloErr,
        maxAbs(leadingRows(glo.data.subarray(k * S), nImg, nCap, 1, S), out(`dbg.sim_tranglo_w.cap${k}`)),
      );
    }
    ref.sim_tranloc_w = locErr;
    ref.sim_tranglo_w = gloErr;

    const show = (e: Record<string, number>) =>
      Object.entries(e)
        .map(([k, v]) => `${k} ${v.toExponential(2)}`)
        .join(', ');
    t.diagnostic(`${module} vs the reference: ${show(ref)}`);
    t.diagnostic(`${module} vs vsl's tfjs forward: ${show(tfj)}`);
    for (const [k, e] of [...Object.entries(ref), ...Object.entries(tfj)]) assert.ok(e <= TOL, `${k}: ${e} > ${TOL}`);
    await Promise.all([image.release(), caption.release(), caption64.release(), score.release()]);
    w.dispose();
    reg.dispose();
  });
}
