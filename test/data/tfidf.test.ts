import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readGroup } from '../../src/io/h5.js';
import { captionCider, compareCodePoints, denseRows, fitTfidf, imageCider, tfidfTokens } from '../../src/data/tfidf.js';
import { maxAbsDiff } from '../helpers/asserts.js';
import { FIXTURES, GOLDEN } from '../helpers/paths.js';

const FIX = path.join(FIXTURES, 'tokenizer/tfidf_cases.json');

test('TF-IDF, image_cider and caption_cider match the golden file', async () => {
  const file = path.join(GOLDEN, 'SGR.h5');
  const inputs = await readGroup(file, 'inputs');
  const outputs = await readGroup(file, 'outputs');
  const corpus = inputs.get('tfidf_corpus_text')!.data as string[];
  const golden = inputs.get('tfidf')!;
  const t = fitTfidf(corpus);
  assert.equal(t.nDocs, 20);
  assert.deepEqual([t.nDocs, t.nTerms], golden.shape);
  const dense = denseRows(
    t,
    Array.from({ length: t.nDocs }, (_, i) => i),
  );
  assert.ok(maxAbsDiff(dense, golden.data as Float32Array) <= 1e-6);

  // The batch: caption k of the 6 is corpus caption caption_index[k], whose image is img_of_cap[k]
  // (= floor(caption_index / 5)); image_cider averages over the 5 captions of each image.
  const capIdx = Array.from(inputs.get('caption_index')!.data as BigInt64Array, Number);
  const imgOf = Array.from(inputs.get('img_of_cap')!.data as BigInt64Array, Number);
  assert.deepEqual(
    imgOf,
    capIdx.map((c) => Math.floor(c / 5)),
  );
  const ic = imageCider(t, imgOf, 5);
  const cc = captionCider(t, capIdx);
  assert.ok(maxAbsDiff(ic, outputs.get('image_cider')!.data as Float32Array) <= 1e-5);
  assert.ok(maxAbsDiff(cc, outputs.get('caption_cider')!.data as Float32Array) <= 1e-5);
  // and the per-item tensors a training batch carries
  assert.ok(maxAbsDiff(denseRows(t, capIdx), inputs.get('tfidf_for_caption')!.data as Float32Array) <= 1e-6);
  const forImage = denseRows(
    t,
    imgOf.flatMap((i) => [0, 1, 2, 3, 4].map((p) => 5 * i + p)),
  );
  assert.ok(maxAbsDiff(forImage, inputs.get('tfidf_for_image')!.data as Float32Array) <= 1e-6);
});

test('identical terms and values to scikit-learn on tricky Unicode captions', () => {
  const fx = JSON.parse(fs.readFileSync(FIX, 'utf8')) as {
    corpus: string[];
    terms: string[];
    rows: Array<{ cols: number[]; vals: number[] }>;
  };
  const t = fitTfidf(fx.corpus);
  assert.deepEqual(t.terms, fx.terms);
  fx.rows.forEach((r, i) => {
    const a = t.indptr[i];
    const b = t.indptr[i + 1];
    assert.deepEqual(Array.from(t.indices.subarray(a, b)), r.cols, `columns of caption ${i}`);
    assert.ok(maxAbsDiff(t.values.subarray(a, b), r.vals) < 1e-12, `values of caption ${i}`);
  });
});

test('sklearn token rules: lower-case, Unicode word runs of >= 2 characters', () => {
  assert.deepEqual(tfidfTokens("A man's café-bar, x_y 3 45 ÉCOLE über  I a 😀ok"), [
    'man',
    'café',
    'bar',
    'x_y',
    '45',
    'école',
    'über',
    'ok',
  ]);
});

test('columns sort by code point like Python, not by UTF-16 unit', () => {
  // U+FF42 (fullwidth b) < U+1D41A (bold small a), though its UTF-16 unit 0xFF42 > the surrogate 0xD835
  const terms = ['\u{1D41A}x', '\uFF42b', 'zz', 'ab'];
  assert.ok(['\u{1D41A}x', '\uFF42b'].sort()[0] === '\u{1D41A}x', 'JS default sort differs');
  assert.deepEqual([...terms].sort(compareCodePoints), ['ab', 'zz', '\uFF42b', '\u{1D41A}x']);
  const t = fitTfidf(['ab zz', '\uFF42b \u{1D41A}x ab']);
  assert.deepEqual(t.terms, ['ab', 'zz', '\uFF42b', '\u{1D41A}x']);
});

test('hand-computed smooth idf, raw tf and L2 rows; empty captions give zero rows', () => {
  const t = fitTfidf(['dog dog cat', 'cat', '!', 'bird']);
  assert.deepEqual(t.terms, ['bird', 'cat', 'dog']);
  const idf = (df: number) => Math.log(5 / (1 + df)) + 1;
  assert.ok(Math.abs(t.idf[1] - idf(2)) < 1e-15);
  const d = 2 * idf(1);
  const c = idf(2);
  const nrm = Math.hypot(d, c);
  const rows = denseRows(t, [0, 1, 2]);
  assert.ok(maxAbsDiff(rows, [0, c / nrm, d / nrm, 0, 1, 0, 0, 0, 0]) < 1e-7);
  const cc = captionCider(t, [0, 1, 2]);
  assert.ok(Math.abs(cc[1] - c / nrm) < 1e-7);
  assert.equal(cc[8], 0);
});

test('image_cider equals the mean of the 25 caption-pair cosines; bad indices are errors', () => {
  const caps = Array.from(
    { length: 30 },
    (_, i) => `w${i % 7} w${(i * 3) % 11} shared${Math.floor(i / 5)} extra${i % 4}`,
  );
  const t = fitTfidf(caps);
  const imgs = [3, 0, 5, 3];
  const ic = imageCider(t, imgs);
  const all = captionCider(
    t,
    Array.from({ length: 30 }, (_, i) => i),
  );
  for (let a = 0; a < 4; a++) {
    for (let b = 0; b < 4; b++) {
      let s = 0;
      for (let p = 0; p < 5; p++) for (let q = 0; q < 5; q++) s += all[(5 * imgs[a] + p) * 30 + 5 * imgs[b] + q];
      assert.ok(Math.abs(ic[a * 4 + b] - s / 25) < 1e-6);
    }
  }
  assert.throws(() => imageCider(t, [6]), /caption 0 of image 6/);
  assert.throws(() => captionCider(t, [30]), /expected a caption index in \[0, 30\), found 30/);
});

// Speed is the bench's business; this checks that a COCO-sized corpus is held sparsely and scored right.
test('fits a COCO-sized split (566,435 captions) sparsely; image_cider of a 128-image batch', () => {
  const words = Array.from({ length: 25000 }, (_, i) => `w${i.toString(36)}`);
  let x = 12345;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const caps = Array.from({ length: 566435 }, () => {
    const n = 8 + Math.floor(rnd() * 8);
    let s = 'a';
    for (let k = 0; k < n; k++) s += ' ' + words[Math.floor(rnd() ** 2 * words.length)];
    return s + ' .';
  });
  const t0 = performance.now();
  const t = fitTfidf(caps, { float32: true });
  const fitMs = performance.now() - t0;
  assert.equal(t.nDocs, 566435);
  assert.ok(t.nTerms > 20000);
  assert.ok(t.values.length < 16 * 566435, 'sparse storage');
  const batch = Array.from({ length: 128 }, (_, i) => (i * 881) % 113287);
  const t1 = performance.now();
  const ic = imageCider(t, batch);
  const ciderMs = performance.now() - t1;
  assert.equal(ic.length, 128 * 128);
  assert.ok(
    ic.every((v) => Number.isFinite(v) && v >= 0 && v <= 1 + 1e-6),
    'similarities in [0, 1]',
  );
  for (let i = 0; i < 128; i++) assert.ok(ic[i * 129] > 0, `an image's similarity to itself: ${ic[i * 129]}`);
  // a few entries against their definition: the mean of the 25 cosines between the two images' captions
  for (const [a, b] of [
    [0, 0],
    [0, 1],
    [5, 77],
    [127, 3],
  ] as const) {
    const five = [0, 1, 2, 3, 4];
    const rows = [...five.map((p) => 5 * batch[a] + p), ...five.map((q) => 5 * batch[b] + q)];
    const cos = captionCider(t, rows);
    let sum = 0;
    for (let p = 0; p < 5; p++) for (let q = 5; q < 10; q++) sum += cos[p * 10 + q];
    assert.ok(Math.abs(ic[a * 128 + b] - sum / 25) < 1e-5, `image_cider[${a}, ${b}] ${ic[a * 128 + b]} vs ${sum / 25}`);
  }
  console.log(
    `# tfidf: fit 566,435 captions in ${(fitMs / 1000).toFixed(2)} s (V=${t.nTerms}, nnz=${t.values.length}); 128x128 image_cider in ${ciderMs.toFixed(1)} ms`,
  );
});
