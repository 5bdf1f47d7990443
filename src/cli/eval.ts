// `vsl eval`: evaluate one checkpoint (vsl HDF5, or a SGRAF/VSL `.pth.tar` in either torch container) on a
// split, as the reference's evalrank, with correctly labelled COCO-1K means.
//
//   vsl eval --model FILE [--data-path DIR] [--vocab-path DIR] [--data-name NAME] [--split test|testall|dev]
//            [--fold5] [--fold-images N] [--save-sims FILE.npy] [--workers N] [--engine auto|onnx|tfjs]
//            [--backend auto|wasm|cpu|...] [--json]
//
// stdout: a table (or one JSON object with --json); logs and progress go to stderr.
// --save-sims writes the float32 score matrix as .npy: shape (images, captions), rows = images, caption c
// belongs to image floor(c/5); with --fold5 the five diagonal fold blocks, shape (5, k, 5k) with k = 1000 for
// COCO-1K (block f = images [f·k, (f+1)·k) × captions [5f·k, 5(f+1)·k)). That file alone is enough to ensemble
// (`vsl eval-overall --sims a.npy --sims b.npy ...`).
//
// Scale-out and resumption (docs/scale-out.md): `--shard i/n --out PART.npy` scores image rows
// [floor(i·N/n), floor((i+1)·N/n)) and writes them as a part (PART.npy + PART.json); `--merge PART...` checks
// and assembles the parts and reports as an unsharded run. Finished blocks are kept in a work directory
// (--work-dir; default PART.work, SIMS.work for --save-sims, else a cache folder) so that the same command run
// again scores only what is missing; SIGINT / SIGTERM finish the blocks in flight and print how to continue.
import fs from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { VslError } from '../util/errors.js';
import { writeNpy } from '../io/npyWrite.js';
import type { BackendChoice } from '../ops/backend.js';
import { parseEngine } from '../runtime/engine.js';
import { EvalStopped, evaluateModel, outputOf, type EvaluateModelOutput } from '../eval/evaluate.js';
import { mergedSplit, mergeParts, writePart } from '../eval/parts.js';
import { releaseBlocks, scoreSplit } from '../eval/scoreSplit.js';
import { parseShard } from '../eval/shards.js';
import { StopOnSignal } from '../eval/stop.js';
import { foldsToJson, formatFolds, formatResult, resultToJson } from '../eval/report.js';
import { writeEvalReport } from '../report/evalReport.js';

export function parseIntOption(name: string, value: string, min: number): number {
  const v = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(v) || v < min) {
    throw new VslError(`${name}: expected an integer >= ${min}, found ${JSON.stringify(value)}`);
  }
  return v;
}

export interface EvalCliOptions {
  model?: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
  split: string;
  fold5?: boolean;
  foldImages?: string;
  saveSims?: string;
  /** HTML report: recall table, rank distributions, example queries */
  report?: string;
  workers?: string;
  backend?: string;
  /** auto (onnx where it loads), onnx or tfjs */
  engine?: string;
  json?: boolean;
  /** Score only shard "i/n" (with --out). */
  shard?: string;
  /** Write the rows as a part: PART.npy + PART.json. */
  out?: string;
  /** Where finished blocks are kept (default: PART.work, SIMS.work, else a cache folder). */
  workDir?: string;
  /** Parts to merge (instead of --model). */
  merge?: string[];
  /** Progress on stderr (the CLI turns it on; tests leave it off). */
  progress?: boolean;
  /** Stop cleanly on SIGINT / SIGTERM (the CLI turns it on). */
  signals?: boolean;
  /** The command line to print when stopped (the CLI passes its own). */
  command?: string;
}

/** Write a score matrix as float32 .npy, with a clear error on failure. */
export function saveSims(file: string, sims: ArrayLike<number>, shape: readonly number[]): void {
  if (!file.endsWith('.npy'))
    throw new VslError(`--save-sims: expected a file name ending in .npy, found ${JSON.stringify(file)}`);
  try {
    writeNpy(file, sims, shape, '<f4');
  } catch (e) {
    if (e instanceof VslError) throw e;
    throw new VslError(`${file}: cannot write the score matrix (${(e as Error).message})`);
  }
}

/** The JSON object printed by --json. */
function evalJson(r: EvaluateModelOutput, savedSims?: string) {
  return {
    model: { path: r.modelPath, module: r.module, source: r.source, epoch: r.epoch },
    data: { dataPath: r.dataPath, dataName: r.dataName, split: r.split, vocab: r.vocabFile },
    nImages: r.nImages,
    nCaptions: r.nCaptions,
    fold5: r.fold5,
    ...(r.fold5 ? { foldImages: r.foldImages, folds: foldsToJson(r.folds!, r.result).folds } : {}),
    result: resultToJson(r.result),
    sims: { shape: r.simsShape, ...(savedSims ? { file: savedSims } : {}) },
    workers: r.workers,
    engine: r.engine,
    backend: r.backend,
    seconds: r.seconds,
    pairsPerSecond: r.pairsPerSecond,
  };
}

/** What `vsl eval --json` prints (one object; --merge adds the part files). */
export type EvalJson = ReturnType<typeof evalJson> & { parts?: string[] };

function evalText(r: EvaluateModelOutput): string {
  const head =
    `model ${r.modelPath} (${r.module}, ${r.source}, epoch ${r.epoch}) on ${r.dataName}/${r.split}: ` +
    `${r.nImages} images, ${r.nCaptions} captions` +
    (r.fold5 ? `, 5 folds of ${r.foldImages} images` : '');
  const table = r.fold5 ? formatFolds(r.folds!, r.result) : formatResult(r.result, r.split);
  return `${head}\n${table}\n`;
}

/** `x.npy` -> `x.work`: the default work directory beside an output file. */
function workDirBeside(file: string): string {
  return file.replace(/\.npy$/, '') + '.work';
}

function stoppedError(e: EvalStopped, sig: NodeJS.Signals | null, command: string | undefined): VslError {
  return new VslError(
    `${sig ? `stopped by ${sig}` : 'stopped'}: ${e.scored.blocks.reused + e.scored.blocks.scored} of ${e.scored.blocks.total} blocks ` +
      `are kept in ${e.scored.workDir}; continue with: ${command ?? 'the same command'}`,
    sig ? StopOnSignal.exitCode(sig) : 130,
  );
}

/** `vsl eval --merge PART...`: the parts' matrix, reported as an unsharded run would be. */
async function runMerge(o: EvalCliOptions): Promise<string> {
  if (o.model || o.shard || o.out)
    throw new VslError('--merge: give the parts only (no --model, --shard or --out: the parts say what they hold)');
  const merged = mergeParts(o.merge!);
  const s = mergedSplit(merged);
  const r = outputOf(s, { pairs: s.pairsScored });
  if (o.saveSims) saveSims(o.saveSims, r.sims, r.simsShape);
  if (o.report) await writeEvalReport(o.report, r);
  return o.json
    ? JSON.stringify({ ...evalJson(r, o.saveSims), parts: merged.files }) + '\n'
    : evalText(r) +
        `merged from ${merged.files.length} part(s): ${merged.files.join(', ')}\n` +
        (o.saveSims ? `scores (${r.simsShape.join(' x ')}) written to ${o.saveSims}\n` : '');
}

/** The action of `vsl eval`: returns what goes to stdout. */
export async function runEval(o: EvalCliOptions): Promise<string> {
  if (o.saveSims !== undefined && !o.saveSims.endsWith('.npy')) {
    throw new VslError(`--save-sims: expected a file name ending in .npy, found ${JSON.stringify(o.saveSims)}`);
  }
  if (o.merge && o.merge.length > 0) return runMerge(o);
  if (!o.model) throw new VslError('--model: expected a checkpoint file (or --merge PART...)');
  if (o.out !== undefined && !o.out.endsWith('.npy'))
    throw new VslError(`--out: expected a part file name ending in .npy, found ${JSON.stringify(o.out)}`);
  if (o.shard !== undefined && o.out === undefined)
    throw new VslError('--shard: expected --out PART.npy too (a shard writes its rows as a part)');
  if (o.out !== undefined && o.saveSims !== undefined)
    throw new VslError('--out: a part holds rows of the matrix; --save-sims belongs to the merge (vsl eval --merge)');
  // installed when the scoring starts: a signal during the loading and encoding ends the process at once
  let stop: StopOnSignal | undefined;
  const common = {
    modelPath: o.model,
    dataPath: o.dataPath,
    vocabPath: o.vocabPath,
    dataName: o.dataName,
    split: o.split,
    fold5: o.fold5 ?? false,
    foldImages: o.foldImages !== undefined ? parseIntOption('--fold-images', o.foldImages, 1) : undefined,
    workers: o.workers !== undefined ? parseIntOption('--workers', o.workers, 1) : undefined,
    backend: (o.backend ?? 'auto') as BackendChoice,
    engine: parseEngine(o.engine),
    workDir: o.workDir ?? (o.out ? workDirBeside(o.out) : o.saveSims ? workDirBeside(o.saveSims) : undefined),
    shouldStop: o.signals ? () => (stop ??= new StopOnSignal()).requested !== null : undefined,
  };
  try {
    if (o.out !== undefined) {
      const shard = o.shard !== undefined ? parseShard(o.shard) : { index: 0, count: 1 };
      const s = await scoreSplit({ ...common, shard });
      if (s.stopped) throw new EvalStopped(s, 'stopped', 130);
      const files = writePart(o.out, s, shard);
      releaseBlocks(s);
      const summary = {
        part: files.npy,
        manifest: files.manifest,
        shard,
        engine: s.engine,
        rows: s.rows,
        shape: s.shape,
        blocks: s.blocks,
        seconds: s.seconds,
      };
      return o.json
        ? JSON.stringify(summary) + '\n'
        : `rows [${s.rows[0]}, ${s.rows[1]}) of the ${s.shape.join(' x ')} score matrix (shard ${shard.index}/${shard.count}) ` +
            `written to ${files.npy} (manifest ${files.manifest}); ${s.blocks.reused} of ${s.blocks.total} blocks reused\n`;
    }
    const file = o.saveSims;
    const r = await evaluateModel({
      ...common,
      progress: o.progress ?? false,
      keep: file ? (sims, shape) => saveSims(file, sims, shape) : undefined,
    });
    if (o.report) await writeEvalReport(o.report, r);
    return o.json
      ? JSON.stringify(evalJson(r, o.saveSims)) + '\n'
      : evalText(r) + (o.saveSims ? `scores (${r.simsShape.join(' x ')}) written to ${o.saveSims}\n` : '');
  } catch (e) {
    if (e instanceof EvalStopped) throw stoppedError(e, stop?.requested ?? null, o.command);
    throw e;
  } finally {
    stop?.dispose();
  }
}

const EvalConfigSchema = z
  .object({
    model: z.string(),
    dataPath: z.string(),
    vocabPath: z.string(),
    dataName: z.string(),
    split: z.string(),
    fold5: z.boolean(),
    foldImages: z.union([z.number().int(), z.string()]).transform(String),
    saveSims: z.string(),
    report: z.string(),
    workers: z.union([z.number().int(), z.string()]).transform(String),
    backend: z.string(),
    engine: z.string(),
    json: z.boolean(),
    shard: z.string(),
    out: z.string(),
    workDir: z.string(),
  })
  .partial()
  .strict();

/** An eval config file: the options above in camelCase; an unknown key or a wrong type names the key. */
function readEvalConfig(file: string): Partial<EvalCliOptions> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new VslError(`${file}: expected a JSON config file, found ${(e as Error).message}`);
  }
  const r = EvalConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    const key = i.code === 'unrecognized_keys' ? i.keys.join(', ') : i.path.join('.');
    throw new VslError(`${file}: option '${key}': ${i.message}`);
  }
  return r.data;
}

/** A word as a POSIX shell reads it back. */
function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description(
      'evaluate a checkpoint (vsl .h5 or SGRAF/VSL .pth.tar) on a split: R@1/5/10, medr, meanr, rsum both ways ' +
        '(COCO-5K: --split testall; COCO-1K: --split testall --fold5; F30K: --split test)',
    )
    .option('--config <file>', 'JSON file of these options (camelCase names); flags override it')
    .option('--model <file>', 'checkpoint: vsl HDF5 (.h5) or PyTorch .pth.tar (zip or legacy)')
    .option('--data-path <dir>', "data path holding <data_name>/ (default: the checkpoint's)")
    .option(
      '--vocab-path <dir>',
      "folder holding <data_name>_vocab.json, or the .json file (default: the checkpoint's, then the data path, then ./vocab)",
    )
    .option('--data-name <name>', "data name, e.g. coco_precomp (default: the checkpoint's)")
    .option('--split <name>', 'split: test, testall or dev (dev: its first 5000 captions)', 'test')
    .option('--fold5', 'COCO-1K: mean over 5 folds of --fold-images images (use with --split testall)', false)
    .option('--fold-images <n>', 'images per fold with --fold5', '1000')
    .option('--save-sims <file.npy>', 'write the float32 score matrix: (images, captions), or (5, k, 5k) with --fold5')
    .option('--report <file.html>', 'also write an HTML report: recall table, rank distributions, example queries')
    .option(
      '--workers <n>',
      'score worker threads (default: onnx: 2 for large work, else 1 in process on 2 threads; tfjs: min(2, cores) on wasm/cpu, 1 on tensorflow); 1 = in-process',
    )
    .option('--backend <name>', 'tfjs backend: auto, tensorflow-gpu, tensorflow, wasm or cpu', 'auto')
    .option(
      '--engine <name>',
      'scoring engine: auto (onnx where onnxruntime-node loads and the module has a graph, else tfjs), onnx or tfjs',
      'auto',
    )
    .option('--json', 'print one JSON object instead of a table', false)
    .option('--shard <i/n>', 'score image rows [floor(i*N/n), floor((i+1)*N/n)) only, into --out (0 <= i < n)')
    .option('--out <part.npy>', 'write the rows as a part: PART.npy (float32 rows) + PART.json (manifest)')
    .option('--merge <parts...>', 'check and assemble parts (X.npy or X.json) and report as an unsharded run')
    .option(
      '--work-dir <dir>',
      'where finished blocks are kept while scoring (default: PART.work beside --out, SIMS.work beside --save-sims, else ~/.cache/vsl/eval/<key>)',
    )
    .action(async (o: EvalCliOptions & { config?: string }, cmd: Command) => {
      // config < flags: only options the user typed override the file (commander fills in defaults too)
      const fromFile = o.config ? readEvalConfig(o.config) : {};
      const typed = Object.fromEntries(
        Object.entries(o).filter(([k]) => k !== 'config' && cmd.getOptionValueSource(k) === 'cli'),
      );
      const defaults = Object.fromEntries(
        Object.entries(o).filter(([k]) => k !== 'config' && cmd.getOptionValueSource(k) !== 'cli'),
      );
      const command = ['vsl', ...process.argv.slice(2)].map(shellWord).join(' ');
      process.stdout.write(
        await runEval({ ...defaults, ...fromFile, ...typed, progress: true, signals: true, command } as EvalCliOptions),
      );
    });
}
