// `vsl report RUN_DIR`: the page a user of the reference would open TensorBoard for. A summary of the run,
// the loss curves (hinge, visual semantic loss, total) per logged step with their running means, the learning
// rate, the gradient norm before clipping against the clip level, dev recall and rsum per validation, the
// best checkpoint's recall table and every option. `vsl train` refreshes RUN_DIR/report.html at each
// validation (refreshRunReport).
import path from 'node:path';
import { combine } from '../eval/metrics.js';
import { log } from '../util/log.js';
import { defaultModelConfig } from '../model/config.js';
import { moduleNames, moduleOf } from '../model/modules.js';
import { anyToString, VslError } from '../util/errors.js';
import {
  gradNormChart,
  learningRateChart,
  recallChart,
  rsumChart,
  stepCurve,
  type RecallPoint,
  type SeriesPoint,
} from './charts.js';
import { esc, figure, keyValueGrid, keyValueTable, page, recallTable, section, writeHtml } from './html.js';
import { bestValidation, readRun, type RunData, type StepRow, type ValidationRow } from './runData.js';

const seconds = (s: number) => (s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);
const val = (o: Record<string, unknown>, k: string) => o[k] as number | string | boolean | undefined;

/** The module's clause of the summary (its own options), or nothing for a module this vsl does not know. */
function describeModule(m: Record<string, unknown>): string {
  const name = String(m.module);
  return moduleNames().includes(name) ? moduleOf({ module: name }).describe(defaultModelConfig(m)) : '';
}

function series(steps: readonly StepRow[], get: (s: StepRow) => number): SeriesPoint[] {
  return steps.map((s) => ({ iteration: s.iteration, value: get(s) }));
}

function summary(run: RunData): string {
  const m = run.options.model;
  const d = run.options.data;
  const t = run.options.train;
  const start = run.starts.at(-1);
  const last = run.steps.at(-1)!;
  const best = bestValidation(run.validations);
  const dims =
    `image ${val(m, 'imgDim')} → joint ${val(m, 'embedSize')}, words ${val(m, 'wordDim')}, similarity ${val(m, 'simDim')}` +
    describeModule(m) +
    `, vocabulary ${val(m, 'vocabSize')} words`;
  const sizes = start?.train ? `: train ${start.train} captions, dev ${start.dev} captions` : '';
  const epochTimes = run.epochs.length
    ? `mean ${seconds(run.epochs.reduce((a, e) => a + e.seconds, 0) / run.epochs.length)} per epoch (` +
      run.epochs.map((e) => `epoch ${e.epoch}: ${seconds(e.seconds)}`).join(', ') +
      ')'
    : `not logged; last step took ${seconds(last.batchTime)}`;
  const maxViolation = t.maxViolation === false ? 'summed over negatives' : 'hardest negative';
  const warmSum = Number(t.warmupSumEpochs ?? 0);
  const warmSem = Number(t.semanticWarmupEpochs ?? 0);
  const recipe =
    `batch ${val(t, 'batchSize')}, lr ${val(t, 'learningRate')} (×0.1 every ${val(t, 'lrUpdate')} epochs), ` +
    `margin ${val(t, 'margin')}, hinge ${maxViolation}` +
    (warmSum > 0 && t.maxViolation !== false ? ` (summed for the first ${warmSum} epochs)` : '') +
    `, semantic loss ${val(t, 'semanticLoss') ?? 'visual'}` +
    (warmSem > 0 ? ` from epoch ${warmSem}` : '') +
    `, gradient clip ${val(t, 'gradClip')}, dropout ${val(t, 'dropout')}, seed ${val(t, 'seed')}`;
  const rows: [string, string][] = [
    ['module', esc(`${val(m, 'module')}`)],
    ['dimensions', esc(dims)],
    ['data', esc(`${val(d, 'dataName')} in ${val(d, 'dataPath')}${sizes}`)],
    [
      'backend',
      start ? esc(`${start.backend}, training step on ${start.threads} thread(s)`) : 'not logged (older train.log)',
    ],
    ['recipe', esc(recipe)],
    [
      'progress',
      esc(
        `epoch ${last.epoch + 1} of ${val(t, 'numEpochs')}, ${last.iteration} iterations, ` +
          `${run.validations.length} validation(s)` +
          (run.starts.length > 1 ? `, resumed ${run.starts.length - 1} time(s)` : ''),
      ),
    ],
    ['time per epoch', esc(epochTimes)],
    [
      'best epoch',
      best
        ? esc(`epoch ${best.epoch}: dev rsum ${best.rsum.toFixed(1)} (model_best.h5)`)
        : 'no end-of-epoch validation yet',
    ],
  ];
  return keyValueTable(rows);
}

async function lossCharts(run: RunData): Promise<string> {
  const s = run.steps;
  const start = run.starts.at(-1);
  const withSemantic = s.filter((r) => r.semanticLoss !== 'none');
  let html = figure(
    'hinge',
    await stepCurve(
      'hinge loss (triplet ranking, summed over the batch)',
      series(s, (r) => r.hinge),
      series(s, (r) => r.hingeAvg),
      'hinge',
    ),
    s.length,
  );
  if (withSemantic.length > 0) {
    html += figure(
      'semantic',
      await stepCurve(
        'visual semantic loss (VSL)',
        series(withSemantic, (r) => r.semantic),
        series(withSemantic, (r) => r.semanticAvg),
        'VSL',
      ),
      withSemantic.length,
    );
    if (withSemantic.length < s.length)
      html += `<p class="note">The semantic term is drawn where it was part of the loss: ${s.length - withSemantic.length} of ${s.length} logged steps trained on the hinge alone (--semantic-warmup-epochs).</p>\n`;
  } else
    html += `<p class="note">No visual semantic loss in this run (--semantic-loss none): the loss is the hinge.</p>\n`;
  const rest = start?.train !== undefined ? start.train % Number(run.options.train.batchSize) : 0;
  if (rest > 0)
    html += `<p class="note">The losses are summed over a batch: they dip at each epoch's last step, whose batch holds the ${rest} captions left over.</p>\n`;
  html += figure(
    'total',
    await stepCurve(
      'total loss (hinge + VSL)',
      series(s, (r) => r.loss),
      series(s, (r) => r.lossAvg),
      'loss',
    ),
    s.length,
  );
  return html;
}

async function optimiserCharts(run: RunData): Promise<string> {
  const s = run.steps;
  const clip = Number(run.options.train.gradClip ?? 0);
  return (
    figure('lr', await learningRateChart(series(s, (r) => r.lr)), s.length) +
    figure(
      'gradNorm',
      await gradNormChart(
        series(s, (r) => r.gradNorm),
        clip,
      ),
      s.length,
    )
  );
}

async function validationCharts(v: readonly ValidationRow[]): Promise<string> {
  if (v.length === 0) return '<p class="note">No validation yet (metrics.jsonl is absent or empty).</p>\n';
  const points: RecallPoint[] = [];
  for (const r of v) {
    for (const [dir, m] of [
      ['i2t', r.i2t],
      ['t2i', r.t2i],
    ] as const) {
      points.push({ iteration: r.iteration, epoch: r.epoch, metric: `${dir} R@1`, value: m.r1 });
      points.push({ iteration: r.iteration, epoch: r.epoch, metric: `${dir} R@5`, value: m.r5 });
      points.push({ iteration: r.iteration, epoch: r.epoch, metric: `${dir} R@10`, value: m.r10 });
    }
  }
  const best = bestValidation(v);
  const rsum = v.map((r) => ({ iteration: r.iteration, epoch: r.epoch, rsum: r.rsum, best: r === best }));
  return figure('recall', await recallChart(points), v.length) + figure('rsum', await rsumChart(rsum), v.length);
}

function recallSection(dir: string, v: readonly ValidationRow[]): string {
  const best = bestValidation(v);
  if (!best) return '<p class="note">No end-of-epoch validation yet.</p>\n';
  const rows = [{ label: `best: epoch ${best.epoch} (model_best.h5)`, result: combine(best.i2t, best.t2i) }];
  const last = v.at(-1)!;
  if (last !== best)
    rows.push({ label: `last: epoch ${last.epoch}, ${last.where}`, result: combine(last.i2t, last.t2i) });
  return (
    recallTable(rows) +
    `<p class="note">On the dev split (the validation captions of the run). For the test protocols run <code>vsl eval --model ${esc(path.join(dir, 'model_best.h5'))} --split test</code> (Flickr30K), <code>--split testall</code> (COCO 5K) or <code>--split testall --fold5</code> (COCO 1K).</p>\n`
  );
}

function optionsSection(run: RunData): string {
  const t = run.options.train;
  const rows = Object.entries(t).map(
    ([k, v]) => [k, esc(typeof v === 'object' ? JSON.stringify(v) : anyToString(v))] as [string, string],
  );
  return keyValueGrid(rows) + `<p class="note">From ${esc(run.optionsFrom)}.</p>\n`;
}

/** The run report of a read run directory, as one HTML page. */
export async function runReportHtml(run: RunData, now = new Date()): Promise<string> {
  const m = run.options.model;
  const body =
    section('Summary', summary(run), 'summary') +
    section('Losses', await lossCharts(run), 'losses') +
    section('Learning rate and gradient norm', await optimiserCharts(run), 'optimiser') +
    section('Validation', await validationCharts(run.validations), 'validation') +
    section('Best checkpoint', recallSection(run.dir, run.validations), 'best') +
    section('Options', optionsSection(run), 'options');
  return page(
    `vsl run ${path.basename(path.resolve(run.dir))}: ${val(m, 'module')} on ${val(run.options.data, 'dataName')}`,
    run.dir, // as the user gave it: the page travels, the machine's own paths need not
    body,
    `vsl report, ${now.toISOString()}, from ${run.files.log} (${run.steps.length} logged steps) and ${run.files.metrics} (${run.validations.length} validations)`,
  );
}

/** Read RUN_DIR and write its report (default RUN_DIR/report.html); returns the file written. */
export async function writeRunReport(dir: string, out = path.join(dir, 'report.html')): Promise<string> {
  const html = await runReportHtml(await readRun(dir));
  writeHtml(out, html);
  return out;
}

/** The training loop's hook: refresh RUN_DIR/report.html; a failure is a warning, never the end of the run. */
export async function refreshRunReport(dir: string): Promise<void> {
  try {
    await writeRunReport(dir);
  } catch (e) {
    log().warn(`${path.join(dir, 'report.html')} not refreshed: ${e instanceof VslError ? e.message : String(e)}`);
  }
}
