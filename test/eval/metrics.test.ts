import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VslError } from '../../src/util/errors.js';
import {
  evaluate,
  evaluateFold5,
  evaluateFolds,
  foldBlock,
  foldSlices,
  i2t,
  i2tRanks,
  metricsFromRanks,
  t2i,
  t2iRanks,
  type EvalResult,
} from '../../src/eval/metrics.js';

/** Build an (nImg, 5·nImg) matrix from f(image, caption). */
function matrix(nImg: number, f: (i: number, c: number) => number): Float32Array {
  const nCap = 5 * nImg;
  const s = new Float32Array(nImg * nCap);
  for (let i = 0; i < nImg; i++) for (let c = 0; c < nCap; c++) s[i * nCap + c] = f(i, c);
  return s;
}

/** Deterministic pseudo-random numbers (LCG), so failures are reproducible. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

/** The reference's way, literally: sort each row/column descending and look up the positions. */
function bruteForce(s: Float32Array, nImg: number): { i2t: number[]; t2i: number[] } {
  const nCap = 5 * nImg;
  const r1: number[] = [];
  for (let i = 0; i < nImg; i++) {
    const order = Array.from({ length: nCap }, (_, j) => j).sort((a, b) => s[i * nCap + b] - s[i * nCap + a]);
    let best = Infinity;
    for (let c = 5 * i; c < 5 * i + 5; c++) best = Math.min(best, order.indexOf(c));
    r1.push(best);
  }
  const r2: number[] = [];
  for (let c = 0; c < nCap; c++) {
    const order = Array.from({ length: nImg }, (_, i) => i).sort((a, b) => s[b * nCap + c] - s[a * nCap + c]);
    r2.push(order.indexOf(Math.floor(c / 5)));
  }
  return { i2t: r1, t2i: r2 };
}

test('perfect matrix: every recall 100, medr = meanr = 1, rsum 600', () => {
  const nImg = 4;
  const s = matrix(nImg, (i, c) => (Math.floor(c / 5) === i ? 0.9 : 0.1 + 0.01 * ((i + c) % 7)));
  const r = evaluate(s, nImg, 5 * nImg);
  for (const d of [r.i2t, r.t2i]) assert.deepEqual(d, { r1: 100, r5: 100, r10: 100, medr: 1, meanr: 1 });
  assert.equal(r.rsum, 600);
  assert.equal(r.ar, 100);
  assert.equal(r.ari, 100);
});

test('reversed matrix: positives score lowest', () => {
  // 3 images, 15 captions. A row has 10 negatives above its 5 positives: i2t rank 10 for every image.
  // A column has the 2 other images above its own: t2i rank 2 for every caption.
  const nImg = 3;
  const s = matrix(nImg, (i, c) => (Math.floor(c / 5) === i ? 0 : 1));
  const a = i2t(s, nImg, 15);
  assert.deepEqual([...a.ranks], [10, 10, 10]);
  assert.deepEqual({ ...a, ranks: undefined }, { r1: 0, r5: 0, r10: 0, medr: 11, meanr: 11, ranks: undefined });
  const b = t2i(s, nImg, 15);
  assert.deepEqual([...b.ranks], new Array(15).fill(2));
  assert.equal(b.r1, 0);
  assert.equal(b.r5, 100);
  assert.equal(b.r10, 100);
  assert.equal(b.medr, 3);
  assert.equal(b.meanr, 3);
  const r = evaluate(s, nImg, 15);
  assert.equal(r.rsum, 200);
  assert.equal(r.ar, 0);
  assert.equal(r.ari, 200 / 3);
});

test('hand-made matrix with known ranks in both directions', () => {
  // 2 images, 10 captions. Row 0: positives c0..c4, negatives c5..c9.
  const s = new Float32Array([
    // c0   c1   c2   c3   c4   c5   c6   c7   c8   c9
    0.3,
    0.1,
    0.2,
    0.05,
    0.0,
    0.9,
    0.8,
    0.35,
    0.25,
    0.15, // image 0: best positive 0.3, above it 0.9 0.8 0.35 -> rank 3
    0.4,
    0.6,
    0.1,
    0.0,
    0.7,
    0.5,
    0.2,
    0.95,
    0.01,
    0.02, // image 1: best positive 0.95 (c7), nothing above -> rank 0
  ]);
  assert.deepEqual([...i2tRanks(s, 2, 10)], [3, 0]);
  // t2i: caption c's own image is floor(c/5); rank 1 when the other image scores strictly higher.
  // c0: 0.3 vs 0.4 -> 1; c1: 0.1 vs 0.6 -> 1; c2: 0.2 vs 0.1 -> 0; c3: 0.05 vs 0 -> 0; c4: 0 vs 0.7 -> 1
  // c5: 0.5 vs 0.9 -> 1; c6: 0.2 vs 0.8 -> 1; c7: 0.95 vs 0.35 -> 0; c8: 0.01 vs 0.25 -> 1; c9: 0.02 vs 0.15 -> 1
  assert.deepEqual([...t2iRanks(s, 2, 10)], [1, 1, 0, 0, 1, 1, 1, 0, 1, 1]);
  const r = evaluate(s, 2, 10);
  assert.deepEqual(r.i2t, { r1: 50, r5: 100, r10: 100, medr: 2, meanr: 2.5 }); // ranks [3,0]: median 1.5 -> 1 + 1
  assert.deepEqual(r.t2i, { r1: 30, r5: 100, r10: 100, medr: 2, meanr: 1.7 });
  assert.ok(Math.abs(r.rsum - 480) < 1e-9);
});

test('ties: a positive tied with negatives is ranked optimistically (count of strictly greater scores)', () => {
  // Row 0: best positive 0.5 ties with two negatives (c6, c7); only c5 = 0.9 is strictly greater.
  // Pessimistic counting would give 3, the optimistic rule gives 1.
  const s = new Float32Array([
    0.5,
    0.2,
    0.2,
    0.2,
    0.2,
    0.9,
    0.5,
    0.5,
    0.1,
    0.1, //
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5, // image 1: all tied -> i2t rank 0
  ]);
  assert.deepEqual([...i2tRanks(s, 2, 10)], [1, 0]);
  // Columns: c0 ties (0.5 vs 0.5) -> 0; c1..c4 image 1 scores 0.5 > 0.2 -> 1; c5 0.5 < 0.9 -> 1;
  // c6, c7 ties -> 0; c8, c9: 0.5 vs 0.1, own image is 1 -> 0.
  assert.deepEqual([...t2iRanks(s, 2, 10)], [0, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
  // A whole matrix of equal scores is perfect under this rule.
  const flat = new Float32Array(3 * 15).fill(0.25);
  const r = evaluate(flat, 3, 15);
  assert.equal(r.rsum, 600);
});

test('a NaN or Inf score is an error naming the image and the caption, never a rank', () => {
  const good = matrix(3, (i, c) => (Math.floor(c / 5) === i ? 1 : 0));
  assert.doesNotThrow(() => evaluate(good, 3, 15));
  // an image whose scores are all NaN used to count as R@1 = 100
  const nanRow = Float32Array.from(good);
  nanRow.fill(NaN, 15, 30);
  for (const f of [() => evaluate(nanRow, 3, 15, { source: 'sims.npy' }), () => i2t(nanRow, 3, 15)]) {
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof VslError);
      assert.match(e.message, /score of image 1, caption 0: expected a finite number, found NaN \(and 14 more/);
      return true;
    });
  }
  assert.throws(() => evaluate(nanRow, 3, 15, { source: 'sims.npy' }), /^VslError: sims\.npy: /);
  const inf = Float64Array.from(good);
  inf[2 * 15 + 7] = -Infinity;
  assert.throws(() => t2i(inf, 3, 15), /image 2, caption 7: expected a finite number, found -Infinity;/);
  // fold blocks name the image and caption of the whole matrix
  const block = Float32Array.from([1, 1, 1, NaN, 1]);
  assert.throws(() => evaluate(block, 1, 5, { imageOffset: 4, captionOffset: 20 }), /image 4, caption 23:/);
});

test('medr and meanr on odd and even counts (numpy median, then floor, then +1)', () => {
  assert.deepEqual(metricsFromRanks(Int32Array.from([5, 0, 2])), {
    r1: 100 / 3,
    r5: 200 / 3,
    r10: 100,
    medr: 3,
    meanr: 7 / 3 + 1,
  });
  // even: median of [0,1,2,7] = 1.5 -> floor 1 -> medr 2
  assert.equal(metricsFromRanks(Int32Array.from([7, 0, 2, 1])).medr, 2);
  assert.equal(metricsFromRanks(Int32Array.from([7, 0, 2, 1])).meanr, 3.5);
  // even with an integer median: [1,3] -> 2 -> 3
  assert.equal(metricsFromRanks(Int32Array.from([3, 1])).medr, 3);
  // even, large gap: [0,0,9,11] -> 4.5 -> 4 -> 5
  assert.equal(metricsFromRanks(Int32Array.from([11, 0, 9, 0])).medr, 5);
  // the input is not reordered
  const ranks = Int32Array.from([4, 1, 3]);
  metricsFromRanks(ranks);
  assert.deepEqual([...ranks], [4, 1, 3]);
});

test('recall thresholds are strict: rank < K', () => {
  const m = metricsFromRanks(Int32Array.from([0, 4, 5, 9, 10]));
  assert.equal(m.r1, 20);
  assert.equal(m.r5, 40);
  assert.equal(m.r10, 80);
  assert.throws(() => metricsFromRanks(new Int32Array(0)), VslError);
});

test('counting ranks agree with a full sort on random tie-free matrices', () => {
  const rnd = lcg(12345);
  for (const nImg of [1, 2, 7, 20]) {
    const nCap = 5 * nImg;
    // distinct values: a shuffled ramp
    const vals = Array.from({ length: nImg * nCap }, (_, k) => k / (nImg * nCap));
    for (let k = vals.length - 1; k > 0; k--) {
      const j = Math.floor(rnd() * (k + 1));
      [vals[k], vals[j]] = [vals[j], vals[k]];
    }
    const s = Float32Array.from(vals);
    const want = bruteForce(s, nImg);
    const got = evaluate(s, nImg, nCap, { ranks: true });
    assert.deepEqual([...got.ranks.i2t], want.i2t, `i2t nImg=${nImg}`);
    assert.deepEqual([...got.ranks.t2i], want.t2i, `t2i nImg=${nImg}`);
    assert.deepEqual(got.i2t, metricsFromRanks(Int32Array.from(want.i2t)));
    assert.deepEqual(got.t2i, metricsFromRanks(Int32Array.from(want.t2i)));
  }
});

test('rsum, ar and ari are computed from the six recalls', () => {
  const rnd = lcg(7);
  const nImg = 12;
  const s = matrix(nImg, (i, c) => rnd() + (Math.floor(c / 5) === i ? 0.3 : 0));
  const r = evaluate(s, nImg, 5 * nImg);
  const a = i2t(s, nImg, 5 * nImg);
  const b = t2i(s, nImg, 5 * nImg);
  assert.equal(r.rsum, a.r1 + a.r5 + a.r10 + b.r1 + b.r5 + b.r10);
  assert.equal(r.ar, (a.r1 + a.r5 + a.r10) / 3);
  assert.equal(r.ari, (b.r1 + b.r5 + b.r10) / 3);
  assert.equal('ranks' in r, false);
});

test('Float64Array score matrices give the same ranks as Float32Array', () => {
  const rnd = lcg(99);
  const s32 = matrix(6, () => rnd());
  const s64 = Float64Array.from(s32);
  assert.deepEqual(evaluate(s64, 6, 30), evaluate(s32, 6, 30));
});

test('bad shapes are clear errors', () => {
  assert.throws(
    () => evaluate(new Float32Array(2 * 9), 2, 9),
    (e: unknown) => e instanceof VslError && /5 captions per image/.test(e.message),
  );
  assert.throws(
    () => evaluate(new Float32Array(19), 2, 10),
    (e: unknown) => e instanceof VslError && /20 scores, found 19/.test(e.message),
  );
  assert.throws(() => i2t(new Float32Array(0), 0, 0), VslError);
});

test('evaluateFold5 averages every metric, medr / meanr / rsum / ar / ari included, with correct labels', () => {
  const rnd = lcg(2024);
  const folds: EvalResult[] = [];
  for (let f = 0; f < 5; f++) {
    const nImg = 10;
    // different difficulty per fold so every metric varies between folds
    folds.push(
      evaluate(
        matrix(nImg, (i, c) => rnd() + (Math.floor(c / 5) === i ? 0.1 * f : 0)),
        nImg,
        5 * nImg,
      ),
    );
  }
  const m = evaluateFold5(folds);
  const mean = (g: (r: EvalResult) => number): number => folds.reduce((s, r) => s + g(r), 0) / folds.length;
  for (const d of ['i2t', 't2i'] as const) {
    for (const k of ['r1', 'r5', 'r10', 'medr', 'meanr'] as const) {
      assert.ok(Math.abs(m[d][k] - mean((r) => r[d][k])) < 1e-9, `${d}.${k}`);
    }
  }
  assert.ok(Math.abs(m.rsum - mean((r) => r.rsum)) < 1e-9);
  assert.ok(Math.abs(m.ar - mean((r) => r.ar)) < 1e-9);
  assert.ok(Math.abs(m.ari - mean((r) => r.ari)) < 1e-9);
  // The reference would print 6·mean(ar) as "rsum": that is a different number here.
  assert.ok(Math.abs(m.rsum - 6 * m.ar) > 1);
  // rsum of the mean equals the sum of the mean recalls (linearity)
  assert.ok(Math.abs(m.rsum - (m.i2t.r1 + m.i2t.r5 + m.i2t.r10 + m.t2i.r1 + m.t2i.r5 + m.t2i.r10)) < 1e-9);
  // a fractional mean medr is kept, not rounded
  const two = evaluateFold5([
    { ...folds[0], i2t: { ...folds[0].i2t, medr: 1 } },
    { ...folds[1], i2t: { ...folds[1].i2t, medr: 2 } },
  ]);
  assert.equal(two.i2t.medr, 1.5);
  assert.throws(() => evaluateFold5([]), VslError);
});

test('foldSlices cuts COCO testall into 5 folds of 1000 images / 5000 captions', () => {
  const s = foldSlices(5000, 25000);
  assert.equal(s.length, 5);
  s.forEach((f, k) => {
    assert.deepEqual(f, {
      fold: k,
      imgStart: 1000 * k,
      imgEnd: 1000 * (k + 1),
      capStart: 5000 * k,
      capEnd: 5000 * (k + 1),
    });
  });
  assert.deepEqual(foldSlices(10, 50, 2)[1], { fold: 1, imgStart: 5, imgEnd: 10, capStart: 25, capEnd: 50 });
  assert.throws(() => foldSlices(5001, 25005), VslError);
  assert.throws(() => foldSlices(5000, 24000), VslError);
  assert.throws(() => foldSlices(10, 50, 0), VslError);
});

test('foldBlock copies a diagonal block; evaluateFolds ignores cross-fold pairs', () => {
  const nImg = 10;
  const nCap = 50;
  const rnd = lcg(5);
  const s = matrix(nImg, (i, c) => rnd() + (Math.floor(c / 5) === i ? 0.4 : 0));
  const sl = foldSlices(nImg, nCap, 5)[3]; // images 6,7; captions 30..39
  const b = foldBlock(s, nImg, nCap, sl);
  assert.ok(b instanceof Float32Array);
  assert.equal(b.length, 2 * 10);
  for (let i = 0; i < 2; i++) for (let c = 0; c < 10; c++) assert.equal(b[i * 10 + c], s[(6 + i) * nCap + 30 + c]);

  const r = evaluateFolds(s, nImg, nCap, 5);
  assert.equal(r.folds.length, 5);
  assert.deepEqual(r.folds[3], evaluate(b, 2, 10));
  assert.deepEqual(r.mean, evaluateFold5(r.folds));
  // Off-diagonal blocks do not matter: make every cross-fold score huge.
  const s2 = Float32Array.from(s);
  for (let i = 0; i < nImg; i++)
    for (let c = 0; c < nCap; c++) if (Math.floor(i / 2) !== Math.floor(c / 10)) s2[i * nCap + c] = 100;
  assert.deepEqual(evaluateFolds(s2, nImg, nCap, 5), r);
  // ...whereas the full-matrix evaluation does see them
  assert.notDeepEqual(evaluate(s2, nImg, nCap), evaluate(s, nImg, nCap));
});
