// `vsl eval --report FILE.html`: the recall table, the distribution of the right answer's rank both ways, and
// example queries (precomp features have no pixels: an image is shown by its ground-truth captions). Fold5
// results (COCO 1K) pool the ranks of the five folds; the examples come from fold 0.
import { readCaptions } from '../data/captions.js';
import { splitPaths } from '../data/precomp.js';
import type { EvaluateModelOutput } from '../eval/evaluate.js';
import { CAPS_PER_IMAGE, i2tRanks, t2iRanks } from '../eval/metrics.js';
import { topK } from '../eval/topk.js';
import { rankHistogram, type RankBin } from './charts.js';
import { esc, figure, keyValueTable, page, recallTable, section, writeHtml } from './html.js';

const TOP = 5;

/** One square block of the score matrix: the whole split, or one fold of fold5. */
interface Block {
  sims: Float32Array;
  nImg: number;
  nCap: number;
  /** index in the split of the block's first image / caption */
  img0: number;
  cap0: number;
}

function blocksOf(r: EvaluateModelOutput): Block[] {
  if (!r.fold5) return [{ sims: r.sims, nImg: r.nImages, nCap: r.nCaptions, img0: 0, cap0: 0 }];
  const [folds, k, n] = r.simsShape as [number, number, number];
  return Array.from({ length: folds }, (_, f) => ({
    sims: r.sims.subarray(f * k * n, (f + 1) * k * n),
    nImg: k,
    nCap: n,
    img0: f * k,
    cap0: f * n,
  }));
}

const EDGES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 25000];

/** Counts of 1-based ranks in bins 1, 2, 3-5, 6-10, 11-20, ... up to the bin that holds `maxRank`. */
export function rankBins(ranks0: Int32Array, maxRank: number): RankBin[] {
  const bins: { lo: number; hi: number }[] = [];
  let lo = 1;
  for (const hi of [...EDGES, Infinity]) {
    bins.push({ lo, hi });
    if (hi >= maxRank) break;
    lo = hi + 1;
  }
  const counts = new Array<number>(bins.length).fill(0);
  for (const r0 of ranks0) {
    const r = r0 + 1;
    counts[bins.findIndex((b) => r <= b.hi)]++;
  }
  return bins.map((b, i) => ({
    bin: b.lo === b.hi ? String(b.lo) : b.hi === Infinity ? `>${b.lo - 1}` : `${b.lo}-${b.hi}`,
    queries: counts[i],
  }));
}

function concat(parts: Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A few queries spread over the block, then the worst ranked ones (the failures a reader wants to see). */
function pickExamples(ranks: Int32Array, spread: number, worst: number): { index: number; tag: string }[] {
  const n = ranks.length;
  const picked = new Map<number, string>();
  for (let k = 0; k < spread && k < n; k++)
    picked.set(Math.round((k * (n - 1)) / Math.max(1, spread - 1)), 'evenly spaced');
  const order = [...ranks.keys()].sort((a, b) => ranks[b] - ranks[a] || a - b);
  for (const i of order.slice(0, worst)) if (!picked.has(i) && ranks[i] > 0) picked.set(i, 'among the worst ranked');
  return [...picked].map(([index, tag]) => ({ index, tag }));
}

function textToImageExamples(b: Block, ranks: Int32Array, captions: readonly string[]): string {
  let html = '';
  for (const { index: c, tag } of pickExamples(ranks, 4, 2)) {
    const right = Math.floor(c / CAPS_PER_IMAGE);
    const hits = topK(b.nImg, (i) => b.sims[i * b.nCap + c], TOP);
    html += `<p class="query">caption ${b.cap0 + c}: “${esc(captions[b.cap0 + c])}” <span class="note">(${tag}; its image ${b.img0 + right} ranks ${ranks[c] + 1})</span></p><ol class="hits">`;
    for (const h of hits) {
      const ok = h.index === right;
      html += `<li><span class="${ok ? 'ok' : 'miss'}">${ok ? '✓' : '✗'}</span> image ${b.img0 + h.index} <span class="note">score ${h.score.toFixed(4)}</span> — “${esc(captions[(b.img0 + h.index) * CAPS_PER_IMAGE])}”</li>`;
    }
    html += '</ol>\n';
  }
  return html;
}

function imageToTextExamples(b: Block, ranks: Int32Array, captions: readonly string[]): string {
  let html = '';
  for (const { index: i, tag } of pickExamples(ranks, 3, 2)) {
    const own = Array.from({ length: CAPS_PER_IMAGE }, (_, k) => captions[b.cap0 + i * CAPS_PER_IMAGE + k]);
    const hits = topK(b.nCap, (c) => b.sims[i * b.nCap + c], TOP);
    html += `<p class="query">image ${b.img0 + i} <span class="note">(${tag}; its best caption ranks ${ranks[i] + 1}); its captions: ${own.map((t) => `“${esc(t)}”`).join(' ')}</span></p><ol class="hits">`;
    for (const h of hits) {
      const ok = Math.floor(h.index / CAPS_PER_IMAGE) === i;
      html += `<li><span class="${ok ? 'ok' : 'miss'}">${ok ? '✓' : '✗'}</span> caption ${b.cap0 + h.index} <span class="note">(image ${b.img0 + Math.floor(h.index / CAPS_PER_IMAGE)}, score ${h.score.toFixed(4)})</span> “${esc(captions[b.cap0 + h.index])}”</li>`;
    }
    html += '</ol>\n';
  }
  return html;
}

/** The eval report of one evaluation, as one HTML page. */
async function evalReportHtml(r: EvaluateModelOutput, now = new Date()): Promise<string> {
  const captions = readCaptions(splitPaths(r.dataPath, r.dataName, r.split).captions).slice(0, r.nCaptions);
  const blocks = blocksOf(r);
  const i2t = blocks.map((b) => i2tRanks(b.sims, b.nImg, b.nCap));
  const t2i = blocks.map((b) => t2iRanks(b.sims, b.nImg, b.nCap));
  const i2tBins = rankBins(concat(i2t), blocks[0].nCap);
  const t2iBins = rankBins(concat(t2i), blocks[0].nImg);
  const table = r.fold5
    ? recallTable([
        ...r.folds!.map((result, f) => ({ label: `fold ${f}`, result })),
        { label: 'mean', result: r.result },
      ])
    : recallTable([{ label: r.split, result: r.result }]);
  const summary = keyValueTable([
    ['model', esc(`${r.modelPath} (${r.module}, ${r.source}, epoch ${r.epoch})`)],
    ['data', esc(`${r.dataName}/${r.split} in ${r.dataPath}: ${r.nImages} images, ${r.nCaptions} captions`)],
    [
      'protocol',
      esc(
        r.fold5
          ? `5 folds of ${r.foldImages} images (COCO 1K): the mean of every metric`
          : 'all images against all captions',
      ),
    ],
    ['vocabulary', esc(r.vocabFile)],
    [
      'run',
      esc(
        `${r.backend}, ${r.workers} worker(s): encode ${r.seconds.encode.toFixed(1)} s, score ${r.seconds.score.toFixed(1)} s (${Math.round(r.pairsPerSecond)} pairs/s)`,
      ),
    ],
  ]);
  const where = r.fold5 ? ' (fold 0)' : '';
  const body =
    section('Evaluation', summary, 'summary') +
    section(
      'Recall',
      table +
        `<p class="note">R@K: share of queries whose right answer is among the first K (%); medr / meanr: median / mean rank of the right answer (1 = first); rsum: the six recalls added.</p>\n`,
      'recall',
    ) +
    section(
      'Rank of the right answer',
      `<div class="row">` +
        figure(
          'ranks-i2t',
          await rankHistogram(
            `image → text: best-ranked ground-truth caption (${concat(i2t).length} images)`,
            i2tBins,
            '#3182bd',
          ),
          i2tBins.length,
        ) +
        figure(
          'ranks-t2i',
          await rankHistogram(`text → image: the caption's image (${concat(t2i).length} captions)`, t2iBins, '#e6550d'),
          t2iBins.length,
        ) +
        `</div>\n`,
      'ranks',
    ) +
    section(`Example queries: text → image${where}`, textToImageExamples(blocks[0], t2i[0], captions), 'examples-t2i') +
    section(`Example queries: image → text${where}`, imageToTextExamples(blocks[0], i2t[0], captions), 'examples-i2t');
  return page(
    `vsl eval: ${r.module} on ${r.dataName}/${r.split}`,
    `rsum ${r.result.rsum.toFixed(1)} — ${r.modelPath}`,
    body,
    `vsl eval --report, ${now.toISOString()}`,
  );
}

export async function writeEvalReport(file: string, r: EvaluateModelOutput): Promise<void> {
  writeHtml(file, await evalReportHtml(r));
}
