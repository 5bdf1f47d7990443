import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, evaluateFold5, type EvalResult } from '../../src/eval/metrics.js';
import { formatFolds, formatResult, formatTable, foldsToJson, resultToJson } from '../../src/eval/report.js';

// Every number distinct, so a value in the wrong column is caught.
const R: EvalResult = {
  i2t: { r1: 71.26, r5: 92.04, r10: 96.66, medr: 1, meanr: 2.345 },
  t2i: { r1: 55.56, r5: 83.21, r10: 90.09, medr: 2, meanr: 6.789 },
  rsum: 71.26 + 92.04 + 96.66 + 55.56 + 83.21 + 90.09,
  ar: (71.26 + 92.04 + 96.66) / 3,
  ari: (55.56 + 83.21 + 90.09) / 3,
};

/** Split a table line "label | five cells | five cells | rsum" into its parts. */
function cells(line: string): { label: string; i2t: string[]; t2i: string[]; rsum: string } {
  const parts = line.split('|').map((p) => p.trim());
  assert.equal(parts.length, 4, line);
  return { label: parts[0], i2t: parts[1].split(/\s+/), t2i: parts[2].split(/\s+/), rsum: parts[3] };
}

test('single-result table: headers in order, each value under its own label, 1 decimal', () => {
  const text = formatResult(R);
  const lines = text.split('\n');
  const head = lines.find((l) => l.includes('R@1'));
  assert.ok(head);
  const h = cells(head);
  assert.deepEqual(h.i2t, ['R@1', 'R@5', 'R@10', 'medr', 'meanr']);
  assert.deepEqual(h.t2i, ['R@1', 'R@5', 'R@10', 'medr', 'meanr']);
  assert.equal(h.rsum, 'rsum');
  // the direction names sit above the right halves
  const dirLine = lines[lines.indexOf(head) - 1];
  const [, left, right] = dirLine.split('|');
  assert.equal(left.trim(), 'i2t');
  assert.equal(right.trim(), 't2i');
  const row = cells(lines[lines.length - 1]);
  assert.equal(row.label, 'all');
  assert.deepEqual(row.i2t, ['71.3', '92.0', '96.7', '1.0', '2.3']);
  assert.deepEqual(row.t2i, ['55.6', '83.2', '90.1', '2.0', '6.8']);
  assert.equal(row.rsum, R.rsum.toFixed(1));
  assert.match(text, /i2t = image -> text/);
});

test('columns stay aligned for wide values and long labels', () => {
  const big: EvalResult = { ...R, i2t: { ...R.i2t, medr: 1234, meanr: 2345.6 }, rsum: 600 };
  const text = formatTable([
    { label: 'x', result: R },
    { label: 'a much longer label', result: big },
  ]);
  const lines = text.split('\n').slice(1);
  const bars = lines.map((l) => [...l].flatMap((ch, i) => (ch === '|' ? [i] : [])));
  // every line (after the legend) has its separators at the same positions as the header
  for (const b of bars.slice(1)) assert.deepEqual(b.slice(0, 3), bars[1].slice(0, 3));
  assert.equal(cells(lines[lines.length - 1]).i2t[3], '1234.0');
});

test('fold5 table: one row per fold, then the mean row, with correctly labelled averages', () => {
  const folds: EvalResult[] = [0, 1, 2, 3, 4].map((k) => ({
    i2t: { r1: 70 + k, r5: 90 + k / 2, r10: 95 + k / 4, medr: 1 + (k % 2), meanr: 2 + k / 10 },
    t2i: { r1: 50 + k, r5: 80 + k / 2, r10: 88 + k / 4, medr: 2, meanr: 5 + k },
    rsum: 0,
    ar: 0,
    ari: 0,
  }));
  for (const f of folds) {
    f.ar = (f.i2t.r1 + f.i2t.r5 + f.i2t.r10) / 3;
    f.ari = (f.t2i.r1 + f.t2i.r5 + f.t2i.r10) / 3;
    f.rsum = 3 * f.ar + 3 * f.ari;
  }
  const mean = evaluateFold5(folds);
  const text = formatFolds(folds, mean);
  const rows = text.split('\n').filter((l) => /^(fold \d|mean )/.test(l) && l.includes('|'));
  assert.deepEqual(
    rows.map((l) => cells(l).label),
    ['fold 0', 'fold 1', 'fold 2', 'fold 3', 'fold 4', 'mean'],
  );
  rows.slice(0, 5).forEach((l, k) => {
    assert.equal(cells(l).i2t[0], folds[k].i2t.r1.toFixed(1));
    assert.equal(cells(l).rsum, folds[k].rsum.toFixed(1));
  });
  const m = cells(rows[5]);
  assert.equal(m.i2t[3], '1.4'); // mean medr of 1,2,1,2,1
  assert.equal(m.rsum, mean.rsum.toFixed(1));
  // The summary names each mean by what it is (the reference shifts these three labels).
  const summary = text.split('\n').at(-1) ?? '';
  assert.match(summary, new RegExp(`rsum ${mean.rsum.toFixed(1)}`));
  assert.match(summary, new RegExp(`average i2t recall ${mean.ar.toFixed(1)}`));
  assert.match(summary, new RegExp(`average t2i recall ${mean.ari.toFixed(1)}`));
  assert.notEqual(mean.rsum.toFixed(1), (6 * mean.ar).toFixed(1));
});

test('JSON output: plain numbers at full precision, no rank arrays', () => {
  const s = new Float32Array(2 * 10).map((_, k) => (k * 7919) % 13);
  const withRanks = evaluate(s, 2, 10, { ranks: true });
  const j = resultToJson(withRanks);
  assert.deepEqual(Object.keys(j).sort(), ['ar', 'ari', 'i2t', 'rsum', 't2i']);
  assert.deepEqual(JSON.parse(JSON.stringify(j)), {
    i2t: { ...withRanks.i2t },
    t2i: { ...withRanks.t2i },
    rsum: withRanks.rsum,
    ar: withRanks.ar,
    ari: withRanks.ari,
  });
  assert.equal(resultToJson(R).ar, R.ar);

  const fj = foldsToJson([R, withRanks], evaluateFold5([R, withRanks]));
  assert.deepEqual(
    fj.folds.map((f) => f.fold),
    [0, 1],
  );
  assert.equal(fj.folds[0].i2t.r1, 71.26);
  assert.equal(fj.mean.t2i.meanr, (R.t2i.meanr + withRanks.t2i.meanr) / 2);
  assert.equal(JSON.stringify(fj).includes('ranks'), false);
});
