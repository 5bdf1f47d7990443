// The ONNX runner (src/runtime/onnx/runner.ts) end to end against vsl's tfjs evaluation (eval/encodeSplit.ts,
// eval/scoreMatrix.ts) on the same host layouts: randomly initialised models at dims other than the golden ones
// (with every architecture switch), two torch checkpoints read through eval/loadModel.ts, captions of several
// lengths, bucketed and padded score blocks, sub-ranges; then the worker pool and graph files on disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModelConfig } from '../../src/model/config.js';
import { ParamRegistry } from '../../src/model/params.js';
import { Weights } from '../../src/model/weights.js';
import { encodeCaptionTokens, encodeImages } from '../../src/runtime/encode.js';
import { scoreMatrix } from '../../src/runtime/scoreMatrix.js';
import { loadModel } from '../../src/eval/loadModel.js';
import { exportGraphs } from '../../src/runtime/onnx/graphs.js';
import { OnnxModel, saveGraphs, type OnnxScoreOptions } from '../../src/runtime/onnx/runner.js';
import { OnnxScorePool } from '../../src/runtime/onnx/scorePool.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { maxAbs, perturb, randomFloats, randomTokens, smallConfig, useCpu } from './onnxHelpers.js';

const TOL = 1e-5;
const N_IMG = 7;
const LENGTHS = [5, 9, 3, 9, 2, 6, 7, 4, 12, 6, 9];

/** Run the ONNX runner and the tfjs evaluation on the same inputs; returns the max abs error per output. */
async function compare(reg: ParamRegistry, c: ModelConfig, seed: number): Promise<Record<string, number>> {
  const feats = randomFloats(N_IMG * 36 * c.imgDim, seed, 0, 2);
  const rows = (s: number, e: number) => feats.subarray(s * 36 * c.imgDim, e * 36 * c.imgDim);
  const tokens = randomTokens(LENGTHS, c.vocabSize, seed + 1);
  const w = Weights.of(reg);
  const tfImg = encodeImages(w, c, N_IMG, rows, 3);
  const tfCap = encodeCaptionTokens(w, c, tokens, 4);
  const onnx = await OnnxModel.fromRegistry(reg, c);
  const img = await onnx.encodeImages(N_IMG, rows, 3);
  const cap = await onnx.encodeCaptionTokens(tokens, 4);
  const e: Record<string, number> = {
    regions: maxAbs(img.regions, tfImg.regions),
    vGlobal: maxAbs(img.vGlobal, tfImg.vGlobal),
    words: maxAbs(cap.words, tfCap.words),
    tGlobal: maxAbs(cap.tGlobal, tfCap.tGlobal),
  };
  // the score graph on tfjs's encodings (it alone), then on its own (the whole ONNX path)
  const cases: [string, OnnxScoreOptions, [number, number]?, [number, number]?][] = [
    ['sims (1 image, bucketed)', {}],
    ['sims (3 x 4, padded)', { imageBlock: 3, captionBlock: 4, bucketByLength: false }],
    ['sims (ranges)', { imageBlock: 2, imageRange: [1, 6], captionRange: [2, 9] }],
  ];
  for (const [name, o] of cases) {
    const ref = scoreMatrix(w, c, tfImg, tfCap, { imageRange: o.imageRange, captionRange: o.captionRange });
    e[name] = maxAbs(await onnx.scoreMatrix(tfImg, tfCap, o), ref);
  }
  e['sims (ONNX encodings)'] = maxAbs(await onnx.scoreMatrix(img, cap), scoreMatrix(w, c, tfImg, tfCap));
  // and the other way round: the ONNX encodings in the tfjs scorer (the layouts are one)
  e['sims (tfjs scorer, ONNX encodings)'] = maxAbs(scoreMatrix(w, c, img, cap), scoreMatrix(w, c, tfImg, tfCap));
  await onnx.release();
  w.dispose();
  return e;
}

function check(t: { diagnostic: (s: string) => void }, label: string, e: Record<string, number>): void {
  t.diagnostic(
    `${label}: ${Object.entries(e)
      .map(([k, v]) => `${k} ${v.toExponential(2)}`)
      .join(', ')}`,
  );
  for (const [k, v] of Object.entries(e)) assert.ok(v <= TOL, `${label} ${k}: max abs error ${v} > ${TOL}`);
}

const CONFIGS: [string, Partial<ModelConfig>][] = [
  ['SGR, 2 steps', { module: 'SGR', sgrStep: 2 }],
  ['SGR, 1 step, uni-GRU, no image norm', { module: 'SGR', sgrStep: 1, biGru: false, noImgNorm: true }],
  ['SAF, no text norm', { module: 'SAF', noTxtNorm: true }],
  ['SAF, uni-GRU, no norms', { module: 'SAF', biGru: false, noImgNorm: true, noTxtNorm: true }],
];

test('the ONNX runner matches the tfjs evaluation on random models', async (t) => {
  await useCpu();
  for (const [k, [label, over]] of CONFIGS.entries()) {
    const c = smallConfig(over);
    const reg = ParamRegistry.init(c, 11 + k);
    perturb(reg, 200 + 20 * k);
    check(t, label, await compare(reg, c, 300 + k));
    reg.dispose();
  }
});

test('the ONNX runner matches the tfjs evaluation on torch checkpoints', async (t) => {
  await useCpu();
  for (const f of ['test/fixtures/reference/sgr_checkpoint_1.pth.tar', 'test/fixtures/torch/saf.legacy.pth.tar']) {
    const m = await loadModel(path.join(REPO_ROOT, f));
    check(t, path.basename(f), await compare(m.reg, m.config, 400));
    m.reg.dispose();
  }
});

test('two score workers and graph files on disk give the in-process scores', async (t) => {
  await useCpu();
  const c = smallConfig({ module: 'SGR', sgrStep: 2 });
  const reg = ParamRegistry.init(c, 5);
  perturb(reg, 500);
  const graphs = exportGraphs(reg, c);
  const onnx = await OnnxModel.fromGraphs(graphs);
  const feats = randomFloats(N_IMG * 36 * c.imgDim, 6, 0, 2);
  const img = await onnx.encodeImages(N_IMG, (s, e) => feats.subarray(s * 36 * c.imgDim, e * 36 * c.imgDim));
  const cap = await onnx.encodeCaptionTokens(randomTokens(LENGTHS, c.vocabSize, 7));
  const inProcess = await onnx.scoreMatrix(img, cap, { imageRange: [1, 7], captionRange: [0, 10] });
  const pool = await OnnxScorePool.start({ workers: 2, graph: graphs, img, cap, chunkImages: 2 });
  let last = 0;
  const pooled = await pool.score([1, 7], [0, 10], (done) => (last = done));
  await pool.close();
  assert.deepEqual(pooled, inProcess);
  assert.equal(last, 60);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-onnx-'));
  try {
    saveGraphs(dir, graphs);
    const fromDisk = await OnnxModel.fromDir(dir);
    assert.deepEqual(await fromDisk.scoreMatrix(img, cap, { imageRange: [1, 7], captionRange: [0, 10] }), inProcess);
    await fromDisk.release();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic('2 workers and the graph files give the in-process scores bit for bit');
  await onnx.release();
  reg.dispose();
});
