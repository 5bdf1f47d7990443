// Charts of the reports: vega-lite specifications compiled to vega and rendered to SVG text here, on the
// server side (vega's headless View.toSVG), so that a report needs no script to be read. One function a chart;
// each returns the SVG of one figure. Lines draw one vertex per data row (the browser test counts them);
// bars carry their values in aria-label.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

const WIDTH = 820;
const HEIGHT = 170;

const CONFIG = {
  font: 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 11, orient: 'right', labelLimit: 260 },
  title: { fontSize: 13, anchor: 'start', fontWeight: 'bold' },
} as const;

/** Round the coordinates vega writes at full float precision (30.00000000000003) to 2 decimals. */
function compactNumbers(svg: string): string {
  const round = (m: string) => String(Math.round(Number(m) * 100) / 100);
  return svg.replace(
    / (d|transform)="([^"]*)"/g,
    (_, attr: string, value: string) => ` ${attr}="${value.replace(/-?\d+\.\d{3,}(e-?\d+)?/g, round)}"`,
  );
}

/** Compile a vega-lite spec and render it to an SVG string (no DOM, no canvas). */
async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vg = compile({ config: CONFIG, ...spec }).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    return compactNumbers(await view.toSVG());
  } finally {
    view.finalize();
  }
}

export interface SeriesPoint {
  iteration: number;
  value: number;
}

const x = (title = 'iteration') => ({
  field: 'iteration',
  type: 'quantitative' as const,
  title,
  axis: { tickMinStep: 1 },
});

/**
 * A per-step curve and its running mean (reset each epoch, as the reference's meters): the raw values as a thin
 * light line, the running mean as a solid one. Each line has one vertex per row.
 */
export function stepCurve(title: string, raw: SeriesPoint[], mean: SeriesPoint[], yTitle: string): Promise<string> {
  const rows = [
    ...raw.map((p) => ({ ...p, series: 'per step' })),
    ...mean.map((p) => ({ ...p, series: 'running mean (per epoch)' })),
  ];
  return renderSvg({
    title,
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    mark: { type: 'line', interpolate: 'linear', strokeWidth: 1.5, clip: true },
    encoding: {
      x: x(),
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: false } },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        scale: { domain: ['per step', 'running mean (per epoch)'], range: ['#9ecae9', '#1f5f99'] },
      },
      order: { field: 'iteration' },
    },
  });
}

/** The learning rate per logged step (log scale: the x0.1 decays are steps of equal height). */
export function learningRateChart(points: SeriesPoint[]): Promise<string> {
  return renderSvg({
    title: 'learning rate',
    width: WIDTH,
    height: 110,
    data: { values: points },
    mark: { type: 'line', interpolate: 'step-after', color: '#54a24b' },
    encoding: {
      x: x(),
      y: { field: 'value', type: 'quantitative', title: 'lr', scale: { type: 'log' }, axis: { format: '.0e' } },
      order: { field: 'iteration' },
    },
  });
}

/**
 * The global gradient norm before clipping, per logged step, with the clip level as a dashed rule; log y (symlog where a norm is 0), as
 * norms span decades (thousands on a plateau, tenths once trained) and the clip level must stay visible.
 */
export function gradNormChart(points: SeriesPoint[], clip: number): Promise<string> {
  const logY = points.every((p) => p.value > 0) ? 'log' : 'symlog';
  const layers: TopLevelSpec[] = [
    {
      data: { values: points },
      mark: { type: 'line', color: '#e45756', strokeWidth: 1.2 },
      encoding: {
        x: x(),
        y: { field: 'value', type: 'quantitative', title: 'gradient norm', scale: { type: logY } },
        order: { field: 'iteration' },
      },
    },
  ];
  if (clip > 0) {
    layers.push({
      data: { values: [{ clip }] },
      mark: { type: 'rule', strokeDash: [6, 4], color: '#333' },
      encoding: { y: { field: 'clip', type: 'quantitative' } },
    });
  }
  return renderSvg({
    title: clip > 0 ? `gradient norm before clipping (dashed: the clip level ${clip})` : 'gradient norm (no clipping)',
    width: WIDTH,
    height: HEIGHT,
    layer: layers,
  } as TopLevelSpec);
}

export interface RecallPoint {
  iteration: number;
  epoch: number;
  metric: string; // 'i2t R@1', ...
  value: number;
}

/** Dev recalls per validation: one line with a point per validation for each of the six recalls. */
export function recallChart(points: RecallPoint[]): Promise<string> {
  return renderSvg({
    title: 'dev recall per validation (i2t = image -> text, t2i = text -> image)',
    width: WIDTH,
    height: 220,
    data: { values: points },
    mark: { type: 'line', point: true },
    encoding: {
      x: x(),
      y: { field: 'value', type: 'quantitative', title: 'recall (%)', scale: { domain: [0, 100] } },
      color: {
        field: 'metric',
        type: 'nominal',
        title: null,
        sort: ['i2t R@1', 'i2t R@5', 'i2t R@10', 't2i R@1', 't2i R@5', 't2i R@10'],
        scale: { range: ['#08519c', '#3182bd', '#9ecae1', '#a63603', '#e6550d', '#fdae6b'] },
      },
      order: { field: 'iteration' },
      tooltip: [{ field: 'metric' }, { field: 'epoch' }, { field: 'value', format: '.1f' }],
    },
  });
}

/** rsum per validation, the best one ringed. */
export function rsumChart(
  points: { iteration: number; epoch: number; rsum: number; best: boolean }[],
): Promise<string> {
  return renderSvg({
    title: 'dev rsum per validation (max 600; the ring marks the best checkpoint)',
    width: WIDTH,
    height: HEIGHT,
    data: { values: points },
    layer: [
      {
        mark: { type: 'line', point: true, color: '#6a3d9a' },
        encoding: {
          x: x(),
          y: { field: 'rsum', type: 'quantitative', title: 'rsum', scale: { domain: [0, 600] } },
          order: { field: 'iteration' },
        },
      },
      {
        transform: [{ filter: 'datum.best' }],
        mark: { type: 'point', size: 260, strokeWidth: 2, color: '#ff7f00' },
        encoding: { x: x(), y: { field: 'rsum', type: 'quantitative' } },
      },
    ],
  });
}

export interface RankBin {
  bin: string;
  queries: number;
}

/** Histogram of 1-based ranks over fixed bins (ordinal x), one bar per bin with its count. */
export function rankHistogram(title: string, bins: RankBin[], color: string): Promise<string> {
  return renderSvg({
    title,
    width: 330,
    height: 180,
    data: { values: bins },
    mark: { type: 'bar', color },
    encoding: {
      x: { field: 'bin', type: 'ordinal', sort: null, title: 'rank of the right answer', axis: { labelAngle: 0 } },
      y: { field: 'queries', type: 'quantitative', title: 'queries' },
    },
  });
}
