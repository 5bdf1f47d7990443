// Each block of the ONNX graph code (src/runtime/onnx) against the tfjs forward it stands for, alone, on a
// randomly initialised model at small dims whose biases and BatchNorm statistics are random too (so that every
// fold is exercised), with a caption block of mixed lengths in no particular order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ParamRegistry } from '../../src/model/params.js';
import { Weights } from '../../src/model/weights.js';
import { encodeCaptions, encodeImages, evalMode } from '../../src/model/encoders.js';
import { textGlobal, visualGlobal } from '../../src/model/globalAttention.js';
import { blockScores } from '../../src/model/similarity.js';
import { l2norm } from '../../src/model/ops.js';
import { HostWeights } from '../../src/runtime/onnx/hostWeights.js';
import { captionEncoder, imageEncoder, textSA, visualSA } from '../../src/runtime/onnx/encoderGraph.js';
import { dims, validMask, cast } from '../../src/runtime/onnx/graphOps.js';
import { globalVectors, localVectors, nodeMasks, blockDims } from '../../src/runtime/onnx/similarityGraph.js';
import { saf, scoreHead, sgr } from '../../src/runtime/onnx/reasoningGraph.js';
import type { GraphBuilder, Value } from '../../src/runtime/onnx/builder.js';
import {
  floatInput,
  int32Input,
  maxAbs,
  padTokens,
  perturb,
  randomFloats,
  randomTokens,
  runBlock,
  smallConfig,
  useCpu,
} from './onnxHelpers.js';

const TOL = 1e-5;
const LENGTHS = [5, 9, 3, 9, 2, 6, 7]; // unsorted, repeated, down to 2 (<start> <end>)

for (const module of ['SGR', 'SAF'] as const) {
  test(`ONNX blocks match their tfjs forward (${module})`, async (t) => {
    await useCpu();
    const c = smallConfig({ module, sgrStep: 2 });
    const reg = ParamRegistry.init(c, 7);
    perturb(reg, 100);
    const w = Weights.of(reg);
    const hw = HostWeights.fromRegistry(reg);
    const errs: Record<string, number> = {};
    const nImg = 3;
    const images = tf.tensor3d(randomFloats(nImg * 36 * c.imgDim, 1, 0, 2), [nImg, 36, c.imgDim]);
    const batch = padTokens(randomTokens(LENGTHS, c.vocabSize, 2));
    const nCap = LENGTHS.length;
    const lengths = int32Input(Int32Array.from(LENGTHS), [nCap]);
    const ids = int32Input(batch.ids, [nCap, batch.maxLen]);

    // encoders and global vectors
    const regions = encodeImages(w, images, c);
    const [onnxRegions] = await runBlock({ images: floatInput(images) }, (b, i) => imageEncoder(b, hw, i.images));
    errs.imageEncoder = maxAbs(onnxRegions.data, regions.dataSync());
    const vGlobal = visualGlobal(w, regions, evalMode()).vGlobal;
    const [onnxV] = await runBlock({ regions: floatInput(regions) }, (b, i) => visualSA(b, hw, i.regions));
    errs.visualSA = maxAbs(onnxV.data, vGlobal.dataSync());
    const words = encodeCaptions(w, batch, c, evalMode());
    const [onnxWords] = await runBlock({ ids, lengths }, (b, i) => captionEncoder(b, hw, i.ids, i.lengths).words);
    errs.captionEncoder = maxAbs(onnxWords.data, words.dataSync());
    const tGlobal = textGlobal(w, words, LENGTHS, evalMode());
    const textBlock = (b: GraphBuilder, i: Record<string, Value>) => {
      const valid = validMask(b, cast(b, i.lengths, 'int64'), dims(b, i.words, 1));
      return textSA(b, hw, i.words, i.lengths, valid);
    };
    const [onnxT] = await runBlock({ words: floatInput(words), lengths }, textBlock);
    errs.textSA = maxAbs(onnxT.data, tGlobal.dataSync());

    // the similarity blocks against blockScores' intermediates
    const dbg = new Map<string, tf.Tensor>();
    const { sims } = blockScores(w, c, { regions, vGlobal }, { words, tGlobal, lengths: LENGTHS }, false, (n, x) =>
      dbg.set(n, tf.keep(x.clone())),
    );
    const sides = {
      regions: floatInput(regions),
      vGlobal: floatInput(vGlobal),
      words: floatInput(words),
      tGlobal: floatInput(tGlobal),
      lengths,
    };
    const [loc, glo] = await runBlock(sides, (b, i) => {
      const d = blockDims(b, i.regions, i.words);
      return [localVectors(b, hw, i.words, i.regions, d), globalVectors(b, hw, i.vGlobal, i.tGlobal)];
    });
    errs.localSimilarity = maxAbs(loc.data, dbg.get('sim_tranloc_w')!.dataSync());
    errs.globalSimilarity = maxAbs(glo.data, dbg.get('sim_tranglo_w')!.dataSync());

    // SGR / SAF on tfjs's own nodes, then the score head on tfjs's own vectors
    const nodes = l2norm(tf.concat([tf.expandDims(dbg.get('sim_tranglo_w')!, 2), dbg.get('sim_tranloc_w')!], 2));
    const nodeDims = (b: GraphBuilder, x: Value) => ({
      nImg: dims(b, x, 0),
      nCap: dims(b, x, 1),
      Lp: b.op('Sub', [dims(b, x, 2), b.i64([1])]),
    });
    const [vec] = await runBlock({ nodes: floatInput(nodes), lengths }, (b, i) => {
      const d = nodeDims(b, i.nodes);
      const masks = nodeMasks(b, i.lengths, d);
      return module === 'SGR' ? sgr(b, hw, i.nodes, masks) : saf(b, hw, i.nodes, masks);
    });
    const tfVec = module === 'SGR' ? dbg.get(`SGR_module.${c.sgrStep - 1}`)! : dbg.get('SAF_module')!;
    errs[module] = maxAbs(vec.data, tfVec.dataSync());
    const vec3 = tfVec.reshape([nImg, nCap, c.simDim]);
    const [head] = await runBlock({ vec: floatInput(vec3) }, (b, i) => {
      const d = { nImg: dims(b, i.vec, 0), nCap: dims(b, i.vec, 1), Lp: dims(b, i.vec, 2) }; // (Lp unused)
      return scoreHead(b, hw, b.op('Reshape', [i.vec, b.i64([-1, c.simDim])]), d);
    });
    errs.scoreHead = maxAbs(head.data, sims.dataSync());

    t.diagnostic(
      `${module} max abs error per block: ` +
        Object.entries(errs)
          .map(([k, v]) => `${k} ${v.toExponential(2)}`)
          .join(', '),
    );
    for (const [k, e] of Object.entries(errs)) assert.ok(e <= TOL, `${k}: max abs error ${e} > ${TOL}`);
    w.dispose();
    reg.dispose();
  });
}
