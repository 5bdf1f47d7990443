// What a user sees when an ONNX graph or a model cannot be used: one VslError line that names the graph (the
// file, or "in-memory graph X") with ONNX Runtime's reason, or the parameter that cannot be exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ParamRegistry } from '../../src/model/params.js';
import { VslError } from '../../src/util/errors.js';
import { exportGraphs } from '../../src/runtime/onnx/graphs.js';
import { OnnxModel } from '../../src/runtime/onnx/runner.js';
import { createSession, f32Tensor, i32Tensor, runSession } from '../../src/runtime/onnx/session.js';
import { smallConfig, useCpu } from './onnxHelpers.js';

/** The promise rejects with a one-line VslError matching `re`; returns the message. */
async function oneLineError(p: Promise<unknown>, re: RegExp): Promise<string> {
  let msg = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof VslError, `expected a VslError, got ${String((e as Error)?.stack ?? e)}`);
    msg = e.message;
    return true;
  });
  assert.ok(!msg.includes('\n'), `not one line: ${JSON.stringify(msg)}`);
  assert.match(msg, re);
  return msg;
}

test('a bad ONNX graph, in memory or on disk, is one clear line', async (t) => {
  const bytes = new TextEncoder().encode('this is not an ONNX model');
  const a = await oneLineError(
    createSession({ bytes, name: 'score' }),
    /^in-memory graph score: ONNX Runtime cannot load it: .+/,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-onnx-bad-'));
  try {
    const file = path.join(dir, 'score.onnx');
    fs.writeFileSync(file, bytes);
    const b = await oneLineError(createSession({ path: file }), /score\.onnx: ONNX Runtime cannot load it: .+/);
    await oneLineError(
      createSession({ path: path.join(dir, 'none.onnx') }),
      /none\.onnx: cannot read the ONNX graph: file not found$/,
    );
    await oneLineError(OnnxModel.fromDir(dir), /config\.json: cannot read the model config/);
    t.diagnostic(a);
    t.diagnostic(b);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed run names the graph and ORT reason', async (t) => {
  await useCpu();
  const c = smallConfig({ module: 'SAF' });
  const reg = ParamRegistry.init(c, 1);
  const s = await createSession({ bytes: exportGraphs(reg).score, name: 'score' });
  const D = c.embedSize + 1; // not the model's
  const msg = await oneLineError(
    runSession(s, 'in-memory graph score', {
      regions: f32Tensor(new Float32Array(36 * D), [1, 36, D]),
      vGlobal: f32Tensor(new Float32Array(D), [1, D]),
      words: f32Tensor(new Float32Array(2 * D), [1, 2, D]),
      tGlobal: f32Tensor(new Float32Array(D), [1, D]),
      lengths: i32Tensor(Int32Array.of(2), [1]),
    }),
    /^in-memory graph score: ONNX Runtime failed to run it: .+/,
  );
  t.diagnostic(msg);
  await s.release();
  reg.dispose();
});

test('a model that cannot be exported names the parameter', async (t) => {
  await useCpu();
  const c = smallConfig({ module: 'SAF' });
  const reg = ParamRegistry.init(c, 1);
  const set = (name: string, i: number, v: number) => {
    const x = reg.get(name);
    const d = Float32Array.from(x.dataSync() as Float32Array);
    d[i] = v;
    x.assign(tf.tensor(d, x.shape));
  };
  const fails = async (re: RegExp, o: { source?: string; config?: typeof c } = {}) =>
    oneLineError(
      Promise.resolve().then(() => exportGraphs(reg, o.config ?? c, { source: o.source })),
      re,
    );
  set('sim_enc.sim_eval_w.weight', 3, NaN);
  const m1 = await fails(
    /^m\.pth\.tar: cannot export to ONNX: parameter sim_enc\.sim_eval_w\.weight: NaN at index 3$/,
    {
      source: 'm.pth.tar',
    },
  );
  set('sim_enc.sim_eval_w.weight', 3, 0.1);
  set('sim_enc.SAF_module.bn.running_var', 0, -2);
  const m2 = await fails(/parameter sim_enc\.SAF_module\.bn\.running_var: running variance -2 at index 0/);
  set('sim_enc.SAF_module.bn.running_var', 0, 1);
  const m3 = await fails(
    /^the model: cannot export to ONNX: parameter sim_enc\.SGR_module\.0\.graph_query_w\.weight: missing$/,
    {
      config: { ...c, module: 'SGR' },
    },
  );
  const m4 = await fails(/parameter img_enc\.fc\.weight: expected shape \[48,41\], found \[48,40\]/, {
    config: { ...c, imgDim: 41 },
  });
  for (const m of [m1, m2, m3, m4]) t.diagnostic(m);
  exportGraphs(reg, c); // the repaired model exports
  reg.dispose();
});
