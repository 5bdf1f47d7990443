// The HTML of the reports: one self-contained page (inline CSS and inline SVG, no script, no external
// resource, so it opens offline from a file and can be mailed or archived as it is), a few table helpers, and
// the write (a temporary file renamed onto the target, so a reader never sees half a page).
import fs from 'node:fs';
import path from 'node:path';
import type { EvalResult } from '../eval/metrics.js';
import { VslError } from '../util/errors.js';
import { tempNameFor } from '../util/atomicFile.js';

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
  margin: 0 auto; max-width: 1040px; padding: 12px 28px 40px; background: #fff; }
h1 { font-size: 22px; margin: 12px 0 2px; } h2 { font-size: 17px; margin: 26px 0 8px; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin: 0 0 10px; }
table { border-collapse: collapse; margin: 6px 0 10px; } th, td { padding: 3px 10px; text-align: left; vertical-align: top; }
tr:nth-child(even) td { background: #f6f7f9; } th { border-bottom: 1px solid #bbb; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { border: none; color: #555; font-weight: normal; white-space: nowrap; }
figure.chart { margin: 8px 0 14px; } figure.chart svg { max-width: 100%; height: auto; }
.row { display: flex; flex-wrap: wrap; gap: 0 24px; }
.note { color: #666; font-size: 13px; }
.ok { color: #1a7f37; font-weight: 600; } .miss { color: #b42318; }
ol.hits { margin: 4px 0 12px; padding-left: 26px; } ol.hits li { margin: 1px 0; }
.query { margin: 10px 0 2px; font-weight: 600; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
dl.grid { display: grid; grid-template-columns: repeat(3, max-content minmax(0, 1fr)); gap: 2px 12px; font-size: 13px; }
dl.grid dt { color: #555; } dl.grid dd { margin: 0; overflow-wrap: anywhere; }
footer { margin-top: 30px; color: #888; font-size: 12px; }
`;

/** A whole page: title, a line under it, the sections, a footer. */
export function page(title: string, subtitle: string, body: string, footer: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="sub">${esc(subtitle)}</p>
${body}
<footer>${esc(footer)}</footer>
</body></html>
`;
}

export function section(title: string, html: string, id?: string): string {
  return `<section${id ? ` id="${esc(id)}"` : ''}><h2>${esc(title)}</h2>\n${html}</section>\n`;
}

/** A chart's SVG in a figure; `rows` says how many data rows it draws (a reader of the page can check it). */
export function figure(name: string, svg: string, rows: number): string {
  return `<figure class="chart" data-chart="${esc(name)}" data-rows="${rows}">${svg}</figure>\n`;
}

/** Two columns: label, value (values are HTML). */
export function keyValueTable(rows: [string, string][]): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</table>\n`;
}

/** Many short label/value pairs in a three-column grid (values are HTML). */
export function keyValueGrid(rows: [string, string][]): string {
  return `<dl class="grid">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>\n`;
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

/** The recall table of the papers: R@1/5/10, medr, meanr both ways and rsum, a row per labelled result. */
export function recallTable(rows: { label: string; result: EvalResult }[]): string {
  const dir = ['R@1', 'R@5', 'R@10', 'medr', 'meanr'];
  const head =
    `<tr><th></th><th class="n" colspan="5">image → text (i2t)</th><th class="n" colspan="5">text → image (t2i)</th><th></th></tr>` +
    `<tr><th></th>${[...dir, ...dir].map((h) => `<th class="n">${h}</th>`).join('')}<th class="n">rsum</th></tr>`;
  const cells = (m: EvalResult['i2t']) =>
    [m.r1, m.r5, m.r10, m.medr, m.meanr].map((v) => `<td class="n">${fmt(v)}</td>`).join('');
  const body = rows
    .map(
      ({ label, result }) =>
        `<tr><td>${esc(label)}</td>${cells(result.i2t)}${cells(result.t2i)}<td class="n"><b>${fmt(result.rsum)}</b></td></tr>`,
    )
    .join('');
  return `<table class="recall">${head}${body}</table>\n`;
}

/** Write `html` to `file` through a temporary file in the same directory and a rename. */
export function writeHtml(file: string, html: string): void {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new VslError(`${file}: cannot write the report (directory ${dir} not found)`);
  const tmp = tempNameFor(path.join(dir, path.basename(file)));
  try {
    fs.writeFileSync(tmp, html);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new VslError(`${file}: cannot write the report (${(e as Error).message})`);
  }
}
