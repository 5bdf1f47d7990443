// `vsl eval-overall`: the SGRAF ensemble = element-wise mean of the SGR and SAF score matrices,
// through the same i2t / t2i (per fold for COCO-1K).
//
//   vsl eval-overall --sgr FILE --saf FILE [--data-path DIR] [--vocab-path DIR] [--data-name NAME]
//                    [--split S] [--fold5] [--fold-images N] [--workers N] [--engine E] [--backend B] [--save-sims F]
//                    [--json]
//       Each model is loaded and encodes the split with ITS OWN weights and vocabulary (the reference's
//       eval_overall.py loads the SGR checkpoint into the SAF model and crashes, and its fold5=False path does
//       not subsample the images; neither happens here).
//   vsl eval-overall --sims a.npy --sims b.npy [--data-path DIR --data-name NAME --split S] [--fold5]
//       Ensemble of score matrices saved by `vsl eval --save-sims` (all must have the same shape). With a data
//       path and name, the shape is checked against the split.
import path from 'node:path';
import type { Command } from 'commander';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { readNpy } from '../io/npyRead.js';
import { openSplit } from '../data/precomp.js';
import type { BackendChoice } from '../ops/backend.js';
import { parseEngine } from '../runtime/engine.js';
import { averageScores, DEV_MAX_CAPTIONS, evaluateModel, evaluateScores, FOLDS } from '../eval/evaluate.js';
import type { EvalResult } from '../eval/metrics.js';
import { foldsToJson, formatFolds, formatTable, resultToJson } from '../eval/report.js';
import { parseIntOption, saveSims, type EvalCliOptions } from './eval.js';

/** The data options of `vsl eval`, with two models (or saved score matrices) in place of one. */
export type EvalOverallCliOptions = Omit<EvalCliOptions, 'model'> & {
  sgr?: string;
  saf?: string;
  sims?: string[];
};

interface Member {
  label: string;
  file: string;
  result: EvalResult;
  folds?: EvalResult[];
}

function overallJson(
  o: EvalOverallCliOptions,
  members: Member[],
  ens: { result: EvalResult; folds?: EvalResult[] },
  shape: number[],
  extra: Record<string, unknown>,
) {
  const one = (r: EvalResult, folds?: EvalResult[]) => ({
    result: resultToJson(r),
    ...(folds ? { folds: foldsToJson(folds, r).folds } : {}),
  });
  return {
    ...extra,
    split: o.split,
    fold5: o.fold5 ?? false,
    members: members.map((m) => ({ label: m.label, file: m.file, ...one(m.result, m.folds) })),
    ensemble: one(ens.result, ens.folds),
    sims: { shape, ...(o.saveSims ? { file: o.saveSims } : {}) },
  };
}

/** What `vsl eval-overall --json` prints. */
export type EvalOverallJson = ReturnType<typeof overallJson>;

function output(
  o: EvalOverallCliOptions,
  members: Member[],
  ens: { result: EvalResult; folds?: EvalResult[] },
  shape: number[],
  extra: Record<string, unknown>,
): string {
  const fold5 = o.fold5 ?? false;
  if (o.json) return JSON.stringify(overallJson(o, members, ens, shape, extra)) + '\n';
  const rows = [
    ...members.map((m) => ({ label: m.label, result: m.result })),
    { label: 'SGRAF (mean)', result: ens.result },
  ];
  const lines = [
    `ensemble of ${members.map((m) => `${m.label} = ${m.file}`).join(', ')} on split ${o.split}` +
      (fold5 ? ` (5 folds, shape ${shape.join(' x ')})` : ''),
  ];
  if (fold5) {
    lines.push('ensemble, per fold:', formatFolds(ens.folds!, ens.result), '', 'means over the 5 folds:');
  }
  lines.push(formatTable(rows));
  if (o.saveSims) lines.push(`ensemble scores (${shape.join(' x ')}) written to ${o.saveSims}`);
  return lines.join('\n') + '\n';
}

/** Expected score-matrix shape for a split, from its caption count. */
function expectedShape(dataPath: string, dataName: string, split: string, fold5: boolean, shape: number[]): void {
  const s = openSplit(dataPath, dataName, split, { maxCaptions: split === 'dev' ? DEV_MAX_CAPTIONS : undefined });
  try {
    const nImg = Math.floor(s.nCaptions / 5);
    const where = `${path.join(dataPath, dataName)}/${split}`;
    if (fold5) {
      const [f, k] = shape;
      if (f !== FOLDS || FOLDS * k > nImg) {
        throw new VslError(
          `--sims: fold5 scores of shape (${shape.join(', ')}) do not fit ${where} (${nImg} images; expected (5, k, 5k) with 5k <= ${nImg})`,
        );
      }
    } else if (shape[0] !== nImg || shape[1] !== s.nCaptions) {
      throw new VslError(
        `--sims: scores of shape (${shape.join(', ')}) do not fit ${where}: expected (${nImg}, ${s.nCaptions})`,
      );
    }
  } finally {
    s.close();
  }
}

function fromSims(o: EvalOverallCliOptions): string {
  const files = o.sims!;
  if (files.length < 2) throw new VslError(`--sims: expected at least two score files, found ${files.length}`);
  const fold5 = o.fold5 ?? false;
  // NaN/Inf pass the reader: the metrics' own check names the image and caption.
  const mats = files.map((f) => readNpy(f, { allowNonFinite: true }));
  mats.forEach((m, i) => {
    if (fold5 && m.shape.length !== 3)
      throw new VslError(
        `${files[i]}: expected fold5 scores of shape (5, k, 5k), found (${m.shape.join(', ')}) (drop --fold5?)`,
      );
    if (!fold5 && m.shape.length !== 2)
      throw new VslError(
        `${files[i]}: expected scores of shape (images, captions), found (${m.shape.join(', ')})${m.shape.length === 3 ? ' (add --fold5?)' : ''}`,
      );
  });
  const shapes = mats.map((m) => m.shape);
  const avg = averageScores(
    mats.map((m) => m.data),
    shapes,
    files,
  );
  const shape = shapes[0];
  if (o.dataPath !== undefined && o.dataName !== undefined)
    expectedShape(o.dataPath, o.dataName, o.split, fold5, shape);
  else log().warn('--sims without --data-path and --data-name: the shape is not checked against the split');
  const members: Member[] = mats.map((m, i) => ({
    label: path.basename(files[i]),
    file: files[i],
    ...evaluateScores(m.data, shape, fold5, files[i]),
  }));
  const ens = evaluateScores(avg, shape, fold5, `the mean of ${files.join(', ')}`);
  if (o.saveSims) saveSims(o.saveSims, avg, shape);
  return output(o, members, ens, shape, { source: 'sims' });
}

/** The action of `vsl eval-overall`: returns what goes to stdout. */
export async function runEvalOverall(o: EvalOverallCliOptions): Promise<string> {
  const hasSims = (o.sims?.length ?? 0) > 0;
  if (hasSims && (o.sgr || o.saf))
    throw new VslError('eval-overall: give either --sgr and --saf, or --sims files, not both');
  if (o.saveSims !== undefined && !o.saveSims.endsWith('.npy'))
    throw new VslError(`--save-sims: expected a file name ending in .npy, found ${JSON.stringify(o.saveSims)}`);
  if (hasSims) return fromSims(o);
  if (!o.sgr || !o.saf)
    throw new VslError('eval-overall: expected --sgr FILE and --saf FILE (or --sims a.npy --sims b.npy)');
  const fold5 = o.fold5 ?? false;
  const common = {
    dataPath: o.dataPath,
    vocabPath: o.vocabPath,
    dataName: o.dataName,
    split: o.split,
    fold5,
    foldImages: o.foldImages !== undefined ? parseIntOption('--fold-images', o.foldImages, 1) : undefined,
    workers: o.workers !== undefined ? parseIntOption('--workers', o.workers, 1) : undefined,
    backend: (o.backend ?? 'auto') as BackendChoice,
    engine: parseEngine(o.engine),
    progress: o.progress ?? false,
  };
  const outs = [];
  for (const [flag, file, want] of [
    ['--sgr', o.sgr, 'SGR'],
    ['--saf', o.saf, 'SAF'],
  ] as const) {
    const r = await evaluateModel({ ...common, modelPath: file });
    if (r.module !== want) log().warn(`${flag} ${file} holds a ${r.module} model, not ${want}; ensembling it anyway`);
    outs.push(r);
  }
  const [a, b] = outs as [(typeof outs)[0], (typeof outs)[0]];
  if (a.dataName !== b.dataName || a.split !== b.split) {
    throw new VslError(
      `eval-overall: the two models evaluate different data (${a.dataName}/${a.split} vs ${b.dataName}/${b.split}); pass --data-name`,
    );
  }
  const avg = averageScores([a.sims, b.sims], [a.simsShape, b.simsShape], [o.sgr, o.saf]);
  const ens = evaluateScores(avg, a.simsShape, fold5);
  if (o.saveSims) saveSims(o.saveSims, avg, a.simsShape);
  const members: Member[] = [
    { label: `SGR (${a.module})`, file: o.sgr, result: a.result, ...(a.folds ? { folds: a.folds } : {}) },
    { label: `SAF (${b.module})`, file: o.saf, result: b.result, ...(b.folds ? { folds: b.folds } : {}) },
  ];
  return output(o, members, ens, a.simsShape, {
    source: 'models',
    dataName: a.dataName,
    nImages: a.nImages,
    nCaptions: a.nCaptions,
    engine: a.engine === b.engine ? a.engine : `${a.engine}+${b.engine}`,
  });
}

export function register(program: Command): void {
  program
    .command('eval-overall')
    .description(
      'SGRAF ensemble: mean of the SGR and SAF score matrices (from two checkpoints, or from saved --sims files)',
    )
    .option('--sgr <file>', 'SGR checkpoint (.h5 or .pth.tar)')
    .option('--saf <file>', 'SAF checkpoint (.h5 or .pth.tar)')
    .option(
      '--sims <file.npy>',
      'a score matrix saved by `vsl eval --save-sims` (repeat; instead of --sgr/--saf)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--data-path <dir>', "data path holding <data_name>/ (default: each checkpoint's)")
    .option(
      '--vocab-path <dir>',
      "folder holding <data_name>_vocab.json (default: each checkpoint's, then the data path)",
    )
    .option('--data-name <name>', "data name (default: each checkpoint's)")
    .option('--split <name>', 'split: test, testall or dev', 'test')
    .option('--fold5', 'COCO-1K: mean over 5 folds', false)
    .option('--fold-images <n>', 'images per fold with --fold5', '1000')
    .option('--save-sims <file.npy>', 'write the float32 ensemble score matrix')
    .option('--workers <n>', 'score worker threads (default: min(2, cores) on wasm/cpu)')
    .option('--backend <name>', 'tfjs backend: auto, tensorflow-gpu, tensorflow, wasm or cpu', 'auto')
    .option('--engine <name>', 'scoring engine: auto (onnx where it loads), onnx or tfjs', 'auto')
    .option('--json', 'print one JSON object instead of tables', false)
    .action(async (o: EvalOverallCliOptions) => {
      process.stdout.write(await runEvalOverall({ ...o, progress: true }));
    });
}
