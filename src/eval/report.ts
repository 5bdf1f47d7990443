// Plain-text tables and JSON objects for evaluation results. No CLI library: callers print the strings.
//
// Table layout (one row per result; recalls with 1 decimal as in the papers):
//   i2t = image -> text (sentence retrieval), t2i = text -> image (image retrieval)
//             |               i2t                |               t2i                |
//             |  R@1   R@5  R@10   medr   meanr  |  R@1   R@5  R@10   medr   meanr  |   rsum
//   fold 0    | 80.1  96.0  98.6    1.0     1.9  | 62.5  89.6  95.3    1.0     3.5  |  522.1
import type { EvalResult, RecallMetrics } from './metrics.js';

export interface TableRow {
  label: string;
  result: EvalResult;
}

function num(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

function dirCells(m: RecallMetrics): string[] {
  // medr is an integer for one evaluation but a fraction once averaged over folds: 1 decimal everywhere.
  return [num(m.r1, 1), num(m.r5, 1), num(m.r10, 1), num(m.medr, 1), num(m.meanr, 1)];
}

const DIR_HEAD = ['R@1', 'R@5', 'R@10', 'medr', 'meanr'];
const WIDTHS = [5, 5, 5, 6, 7];

/** Any number of labelled results as one aligned table (header, one line per row). */
export function formatTable(rows: readonly TableRow[]): string {
  const labelWidth = Math.max(5, ...rows.map((r) => r.label.length));
  const dir = (cells: string[]): string => cells.map((c, i) => c.padStart(WIDTHS[i])).join(' ');
  const dirWidth = WIDTHS.reduce((a, b) => a + b, 0) + WIDTHS.length - 1;
  const rsumWidth = 6;
  const center = (s: string, w: number): string => {
    const left = Math.floor((w - s.length) / 2);
    return (' '.repeat(Math.max(0, left)) + s).padEnd(w);
  };
  const lines = [
    'i2t = image -> text (sentence retrieval), t2i = text -> image (image retrieval)',
    `${''.padEnd(labelWidth)} | ${center('i2t', dirWidth)} | ${center('t2i', dirWidth)} |`,
    `${''.padEnd(labelWidth)} | ${dir(DIR_HEAD)} | ${dir(DIR_HEAD)} | ${'rsum'.padStart(rsumWidth)}`,
  ];
  for (const { label, result } of rows) {
    lines.push(
      `${label.padEnd(labelWidth)} | ${dir(dirCells(result.i2t))} | ${dir(dirCells(result.t2i))} | ${num(result.rsum, 1).padStart(rsumWidth)}`,
    );
  }
  return lines.join('\n');
}

/** One result (COCO-5K, F30K test, a validation run) as a table with a single row. */
export function formatResult(result: EvalResult, label = 'all'): string {
  return formatTable([{ label, result }]);
}

/**
 * COCO-1K: one row per fold ("fold 0".."fold 4") and the mean row. Unlike the reference's summary, whose
 * labels are shifted, every number here sits under its own name: the rsum column of the mean row
 * is mean(rsum), and the i2t/t2i averages are given on their own line.
 */
export function formatFolds(folds: readonly EvalResult[], mean: EvalResult): string {
  const rows: TableRow[] = folds.map((result, f) => ({ label: `fold ${f}`, result }));
  rows.push({ label: 'mean', result: mean });
  return [
    formatTable(rows),
    `mean over ${folds.length} folds: rsum ${num(mean.rsum, 1)}, average i2t recall ${num(mean.ar, 1)}, average t2i recall ${num(mean.ari, 1)}`,
  ].join('\n');
}

interface RecallJson {
  r1: number;
  r5: number;
  r10: number;
  medr: number;
  meanr: number;
}

export interface ResultJson {
  i2t: RecallJson;
  t2i: RecallJson;
  rsum: number;
  ar: number;
  ari: number;
}

function dirJson(m: RecallMetrics): RecallJson {
  return { r1: m.r1, r5: m.r5, r10: m.r10, medr: m.medr, meanr: m.meanr };
}

/** A plain JSON object for --json (full precision; per-query rank arrays are left out). */
export function resultToJson(result: EvalResult): ResultJson {
  return { i2t: dirJson(result.i2t), t2i: dirJson(result.t2i), rsum: result.rsum, ar: result.ar, ari: result.ari };
}

/** COCO-1K as JSON: every fold with its index and the mean over folds. */
export function foldsToJson(
  folds: readonly EvalResult[],
  mean: EvalResult,
): { folds: (ResultJson & { fold: number })[]; mean: ResultJson } {
  return { folds: folds.map((r, f) => ({ fold: f, ...resultToJson(r) })), mean: resultToJson(mean) };
}
