// What a run directory holds, read for the report: train.log (pino JSON lines: a `run` record at each start,
// a `step` record every log_step, an `epoch` record after each epoch's steps, a `validation` record each
// validation), metrics.jsonl (the validations) and, for the options of runs whose train.log has no `run`
// record, a checkpoint's header. Each line is checked against a schema; a bad one names the file and line.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CHECKPOINT_FORMAT } from '../io/checkpoint.js';
import { openH5 } from '../io/h5.js';
import { badInput, fileError, VslError } from '../util/errors.js';

const num = z.number();
const Recall = z.object({ r1: num, r5: num, r10: num, medr: num, meanr: num });

const StepSchema = z
  .object({
    epoch: num,
    step: num,
    steps: num,
    iteration: num,
    lr: num,
    loss: num,
    lossAvg: num,
    hinge: num,
    hingeAvg: num,
    semantic: num,
    semanticAvg: num,
    gradNorm: num,
    batchTime: num,
    dataTime: num,
    maxViolation: z.boolean().optional(),
    semanticLoss: z.string().optional(),
    time: num.optional(),
  })
  .passthrough();

const ValidationSchema = z
  .object({ epoch: num, iteration: num, where: z.string(), i2t: Recall, t2i: Recall, rsum: num, seconds: num })
  .passthrough();

const EpochSchema = z.object({ epoch: num, steps: num, seconds: num }).passthrough();

const Options = z.object({ model: z.record(z.unknown()), data: z.record(z.unknown()), train: z.record(z.unknown()) });

const RunSchema = z
  .object({
    backend: z.string(),
    threads: num,
    train: num.optional(), // captions of the train split
    dev: num.optional(), // captions of the dev split used for validation
    options: Options,
    time: num.optional(),
  })
  .passthrough();

export type StepRow = z.infer<typeof StepSchema>;
export type ValidationRow = z.infer<typeof ValidationSchema>;
type EpochRow = z.infer<typeof EpochSchema>;
type RunStart = z.infer<typeof RunSchema>;
type RunOptions = z.infer<typeof Options>;

export interface RunData {
  dir: string;
  files: { log: string; metrics: string };
  /** One per start of `vsl train` on this directory (a resume adds one); empty for older logs. */
  starts: RunStart[];
  /** Step records by iteration; where a resumed run logged an iteration again, its record replaces the first. */
  steps: StepRow[];
  epochs: EpochRow[];
  validations: ValidationRow[];
  options: RunOptions;
  /** Where the options came from: train.log's latest `run` record, or a checkpoint. */
  optionsFrom: string;
}

function readLines(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw fileError(file, e);
  }
  return text.split('\n');
}

function parseLine<T>(file: string, n: number, line: string, schema: z.ZodType<T>, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw badInput(file, `line ${n}`, 'a JSON record', JSON.stringify(line.slice(0, 60)));
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new VslError(`${file}: line ${n} (${what} record): field '${i.path.join('.')}': ${i.message}`);
  }
  return r.data;
}

/** The options and epoch of a vsl checkpoint, from its attributes only (the weights are not read). */
async function checkpointOptions(file: string): Promise<RunOptions> {
  const f = await openH5(file);
  let format: unknown;
  let json: unknown;
  try {
    format = f.attrs['format']?.value;
    json = f.attrs['options_json']?.value;
  } finally {
    f.close();
  }
  if (format !== CHECKPOINT_FORMAT) {
    const found = format === undefined ? 'no format attribute' : JSON.stringify(format);
    throw badInput(file, 'attribute format', `"${CHECKPOINT_FORMAT}" (a checkpoint written by vsl train)`, found);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(json));
  } catch {
    throw badInput(file, 'attribute options_json', 'the JSON of the run options', String(json).slice(0, 60));
  }
  const r = Options.safeParse(parsed);
  if (!r.success) throw badInput(file, 'attribute options_json', 'an object with model, data and train', 'other');
  return r.data;
}

/** Read and check a run directory (see the header). */
export async function readRun(dir: string): Promise<RunData> {
  if (!fs.existsSync(dir)) throw new VslError(`${dir}: run directory not found`);
  if (!fs.statSync(dir).isDirectory())
    throw badInput(dir, 'run directory', 'a directory written by vsl train (--model-name)', 'a file');
  const logFile = path.join(dir, 'train.log');
  const metricsFile = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(logFile))
    throw new VslError(
      `${logFile}: file not found (expected the train.log that vsl train writes in its run directory)`,
    );

  const starts: RunStart[] = [];
  const byIteration = new Map<number, StepRow>();
  const epochs = new Map<number, EpochRow>();
  readLines(logFile).forEach((line, i) => {
    if (line.trim() === '') return;
    const head = parseLine(logFile, i + 1, line, z.object({ msg: z.string() }).passthrough(), 'a pino record');
    if (head.msg === 'step') {
      const s = parseLine(logFile, i + 1, line, StepSchema, 'step');
      byIteration.set(s.iteration, s);
    } else if (head.msg === 'epoch') {
      const e = parseLine(logFile, i + 1, line, EpochSchema, 'epoch');
      epochs.set(e.epoch, e);
    } else if (head.msg === 'run') starts.push(parseLine(logFile, i + 1, line, RunSchema, 'run'));
  });
  if (byIteration.size === 0) {
    throw badInput(logFile, 'records', 'step records (msg "step", one every log_step iterations)', 'none');
  }
  const validations: ValidationRow[] = [];
  if (fs.existsSync(metricsFile)) {
    readLines(metricsFile).forEach((line, i) => {
      if (line.trim() !== '') validations.push(parseLine(metricsFile, i + 1, line, ValidationSchema, 'validation'));
    });
  }

  let options: RunOptions | undefined = starts.at(-1)?.options;
  let optionsFrom = `${logFile} (run record)`;
  for (const name of ['checkpoint_last.h5', 'model_best.h5']) {
    const ck = path.join(dir, name);
    if (!fs.existsSync(ck)) continue;
    const fromCk = await checkpointOptions(ck); // also refuses a checkpoint that is not vsl's
    if (!options) {
      options = fromCk;
      optionsFrom = ck;
    }
  }
  if (!options) {
    throw badInput(
      logFile,
      'records',
      'a run record (msg "run") with the options, or a checkpoint beside it',
      'neither',
    );
  }
  return {
    dir,
    files: { log: logFile, metrics: metricsFile },
    starts,
    steps: [...byIteration.values()].sort((a, b) => a.iteration - b.iteration),
    epochs: [...epochs.values()].sort((a, b) => a.epoch - b.epoch),
    validations,
    options,
    optionsFrom,
  };
}

/**
 * The validation model_best.h5 holds: the first end-of-epoch validation with the highest rsum (the loop saves
 * a new best only on a strictly higher rsum at the end of an epoch). Undefined before the first one.
 */
export function bestValidation(v: readonly ValidationRow[]): ValidationRow | undefined {
  let best: ValidationRow | undefined;
  for (const r of v) if (r.where === 'end of epoch' && (!best || r.rsum > best.rsum)) best = r;
  return best;
}
