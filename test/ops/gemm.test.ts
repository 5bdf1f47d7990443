// vsl's relaxed-SIMD product under tfjs-wasm's BatchMatMul and _FusedMatMul (ops/gemm.ts, kernels/vsl_gemm.c)
// against a float64 product computed here, on shapes that reach every edge of its blocking: rows and columns
// that are not multiples of the 3 x 12 register tile, inner dimensions past one 256-deep block, columns past one
// 1,020-wide block, transposed operands, batches on one side or both, a bias of either rank, relu, an empty inner
// dimension, few rows against a large B (packed ahead and kept for the next product with the same B; each case
// runs on fresh tensors, so a kept packing of another B that were used by mistake would show). The products tfjs' own kernel keeps (broadcast of unequal batches, prelu) are checked too.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { Rng } from '../../src/util/rng.js';

let products: string | undefined;
before(async () => {
  products = (await selectBackend('wasm')).products;
});

interface Case {
  batchA: number[];
  batchB: number[];
  M: number;
  N: number;
  K: number;
  tA?: boolean;
  tB?: boolean;
  bias?: 'rank1' | 'rank2';
  relu?: boolean;
}

/** Element (i, j) of a stored (rows, cols) matrix that is used transposed or not. */
const at = (d: Float32Array, o: number, rows: number, cols: number, t: boolean) => (i: number, j: number) =>
  t ? d[o + j * cols + i] : d[o + i * cols + j];

/** The float64 product of the case, batch by batch (batch dims broadcast as tfjs does: equal, or 1). */
function expected(c: Case, a: Float32Array, b: Float32Array, bias: Float32Array | null): Float64Array {
  const batch = Math.max(sz(c.batchA), sz(c.batchB));
  const out = new Float64Array(batch * c.M * c.N);
  for (let t = 0; t < batch; t++) {
    const oa = (sz(c.batchA) > 1 ? t : 0) * c.M * c.K;
    const ob = (sz(c.batchB) > 1 ? t : 0) * c.K * c.N;
    const A = at(a, oa, c.tA ? c.K : c.M, c.tA ? c.M : c.K, !!c.tA);
    const B = at(b, ob, c.tB ? c.N : c.K, c.tB ? c.K : c.N, !!c.tB);
    for (let i = 0; i < c.M; i++)
      for (let j = 0; j < c.N; j++) {
        let s = bias ? bias[j] : 0;
        for (let k = 0; k < c.K; k++) s += A(i, k) * B(k, j);
        out[(t * c.M + i) * c.N + j] = c.relu && s < 0 ? 0 : s;
      }
  }
  return out;
}

const sz = (s: number[]) => s.reduce((x, y) => x * y, 1);

function run(c: Case, fused: boolean, seed: number): { got: Float32Array; want: Float64Array; shape: number[] } {
  const rng = new Rng(seed);
  const aShape = [...c.batchA, ...(c.tA ? [c.K, c.M] : [c.M, c.K])];
  const bShape = [...c.batchB, ...(c.tB ? [c.N, c.K] : [c.K, c.N])];
  const a = rng.fillUniform(new Float32Array(sz(aShape)), -1, 1);
  const b = rng.fillUniform(new Float32Array(sz(bShape)), -1, 1);
  const bias = c.bias ? rng.fillUniform(new Float32Array(c.N), -1, 1) : null;
  const [ta, tb] = [tf.tensor(a, aShape), tf.tensor(b, bShape)];
  const tbias = bias ? tf.tensor(bias, c.bias === 'rank1' ? [c.N] : [1, c.N]) : undefined;
  const y = fused
    ? tf.fused.matMul({
        a: ta,
        b: tb,
        transposeA: !!c.tA,
        transposeB: !!c.tB,
        bias: tbias,
        activation: c.relu ? 'relu' : 'linear',
      })
    : tf.matMul(ta, tb, c.tA, c.tB);
  const got = Float32Array.from(y.dataSync() as Float32Array);
  const shape = y.shape;
  tf.dispose([ta, tb, y, ...(tbias ? [tbias] : [])]);
  return { got, want: expected(c, a, b, bias), shape };
}

const cases: Case[] = [
  { batchA: [], batchB: [], M: 1, N: 1, K: 1 },
  { batchA: [], batchB: [], M: 7, N: 13, K: 5 }, // partial tile in both directions
  { batchA: [], batchB: [], M: 50, N: 25, K: 300 }, // two inner blocks, partial row block
  { batchA: [], batchB: [], M: 4, N: 1030, K: 20 }, // two column blocks, the second 10 wide
  { batchA: [], batchB: [], M: 9, N: 14, K: 600, tA: true }, // three inner blocks
  { batchA: [], batchB: [], M: 11, N: 6, K: 33, tB: true },
  { batchA: [], batchB: [], M: 12, N: 27, K: 31, tA: true, tB: true },
  { batchA: [5], batchB: [5], M: 4, N: 9, K: 10 },
  { batchA: [2, 3], batchB: [1], M: 5, N: 7, K: 6 }, // one B for all: rows folded into one product
  { batchA: [2, 3], batchB: [1], M: 5, N: 7, K: 6, tA: true }, // the same, A transposed: not folded
  { batchA: [1], batchB: [4], M: 3, N: 20, K: 17, tB: true }, // one A for all
  { batchA: [], batchB: [], M: 5, N: 290, K: 300 }, // few rows, a large B: B packed ahead and kept
  { batchA: [], batchB: [], M: 5, N: 290, K: 300, tB: true },
  { batchA: [], batchB: [], M: 6, N: 12, K: 0 }, // empty inner dimension: zeros, or the bias
  { batchA: [], batchB: [], M: 0, N: 12, K: 5 },
];

test(`the products run on vsl's kernel where the engine has relaxed SIMD (${process.version})`, () => {
  // Node 20 (V8 11.3) has it behind a flag that ops/gemm.ts turns on; later versions have it on
  assert.equal(products, process.env.VSL_MATMUL === 'xnnpack' ? 'xnnpack' : 'vsl-gemm');
});

for (const fused of [false, true]) {
  test(`${fused ? '_FusedMatMul' : 'BatchMatMul'} equals the float64 product on ${cases.length} shapes`, (t) => {
    // tfjs' own kernel refuses a rank-2 bias and leaves an empty inner dimension's output unwritten
    if (products !== 'vsl-gemm') return t.skip('VSL_MATMUL=xnnpack: tfjs-wasm runs the products');
    cases.forEach((c, n) => {
      const variants: Case[] = fused
        ? [
            { ...c, bias: 'rank1' },
            { ...c, bias: 'rank2', relu: true },
            { ...c, relu: true },
          ]
        : [c];
      for (const v of variants) {
        const { got, want, shape } = run(v, fused, 100 + n);
        const batch = Math.max(sz(v.batchA), sz(v.batchB));
        assert.deepEqual(shape.slice(-2), [v.M, v.N], JSON.stringify(v));
        assert.equal(got.length, batch * v.M * v.N, JSON.stringify(v));
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
        // float32 sums of K products of values in [-1, 1]: a few ulps of sqrt(K)-sized sums
        assert.ok(worst <= 1e-6 * Math.max(4, v.K), `${JSON.stringify(v)}: max |diff| ${worst}`);
      }
    });
  });
}

test('a B packed ahead is used again only for the same tensor', (t) => {
  if (products !== 'vsl-gemm') return t.skip('VSL_MATMUL=xnnpack: tfjs-wasm runs the products');
  const rng = new Rng(11);
  const a = tf.tensor2d(rng.fillUniform(new Float32Array(4 * 300), -1, 1), [4, 300]);
  const bs = [1, 2, 3].map(() => tf.tensor2d(rng.fillUniform(new Float32Array(300 * 250), -1, 1), [300, 250]));
  const cpu = (b: tf.Tensor2D) => {
    const [A, Bv] = [a.dataSync(), b.dataSync()];
    return Array.from({ length: 4 * 250 }, (_, e) => {
      let s = 0;
      for (let k = 0; k < 300; k++) s += A[Math.floor(e / 250) * 300 + k] * Bv[k * 250 + (e % 250)];
      return s;
    });
  };
  // b0 is packed ahead the second time it comes and kept; b1 and b2 come and go; b1 again
  for (const i of [0, 0, 1, 0, 1, 2, 0, 2, 1, 1, 0]) {
    const got = tf.matMul(a, bs[i]).dataSync();
    const want = cpu(bs[i]);
    const worst = Math.max(...want.map((w, e) => Math.abs(w - got[e])));
    assert.ok(worst < 1e-4, `B #${i}: max |diff| ${worst}`);
  }
  tf.dispose([a, ...bs]);
});

test('a product run twice gives the same bits; prelu and unequal broadcast batches still run (tfjs kernel)', () => {
  const c: Case = { batchA: [], batchB: [], M: 37, N: 41, K: 270, tB: true };
  assert.deepEqual(run(c, false, 7).got, run(c, false, 7).got);
  const a = tf.ones([2, 1, 3, 4]);
  const b = tf.ones([1, 5, 4, 2]);
  const y = tf.matMul(a, b); // (2, 5, 3, 2): both sides broadcast
  assert.deepEqual(y.shape, [2, 5, 3, 2]);
  assert.ok((y.dataSync() as Float32Array).every((v) => v === 4));
  const p = tf.fused.matMul({
    a: tf.ones([2, 3]),
    b: tf.fill([3, 2], -1),
    activation: 'prelu',
    preluActivationWeights: tf.scalar(0.5),
  });
  assert.deepEqual(Array.from(p.dataSync()), [-1.5, -1.5, -1.5, -1.5]);
});
