// A model's options as the reference's argparse `opt` (opts.py), for a checkpoint the reference's
// scripts load: its names, the Python type of each (int, float, bool, str) read off vsl's one options table,
// and vocab_size as train.py sets it. evalrank builds SGRAF(opt) from these and reads data_name, batch_size and
// workers; the two options vsl does not have get the reference's defaults.
import { z } from 'zod';
import type { ModelConfig } from '../model/config.js';
import { py, type PyValue } from '../io/pickleWrite.js';
import { TRAIN_OPTION_TABLE } from './options.js';

/** opts.py in its order: the reference's name, vsl's table key (null: not a vsl option) and, then, its default. */
const REFERENCE_OPTS: readonly (readonly [string, string | null, PyValue?])[] = [
  ['data_path', 'dataPath'],
  ['data_name', 'dataName'],
  ['vocab_path', 'vocabPath'],
  ['model_name', 'modelName'],
  ['logger_name', null, './log'],
  ['batch_size', 'batchSize'],
  ['num_epochs', 'numEpochs'],
  ['lr_update', 'lrUpdate'],
  ['learning_rate', 'learningRate'],
  ['workers', null, py.int(10)], // the reference's data-loader workers (unused there), not vsl's threads
  ['log_step', 'logStep'],
  ['val_step', 'valStep'],
  ['grad_clip', 'gradClip'],
  ['margin', 'margin'],
  ['max_violation', 'maxViolation'],
  ['img_dim', 'imgDim'],
  ['word_dim', 'wordDim'],
  ['embed_size', 'embedSize'],
  ['sim_dim', 'simDim'],
  ['num_layers', 'numLayers'],
  ['bi_gru', 'biGru'],
  ['no_imgnorm', 'noImgnorm'],
  ['no_txtnorm', 'noTxtnorm'],
  ['module_name', 'module'],
  ['sgr_step', 'sgrStep'],
];

function inner(s: z.ZodTypeAny): z.ZodTypeAny {
  // instanceof narrows to ZodDefault<any> / ZodOptional<any>: name the wrapped schema's type
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional)
    s = (s as z.ZodDefault<z.ZodTypeAny> | z.ZodOptional<z.ZodTypeAny>)._def.innerType;
  return s;
}

/** A value as the Python type `schema` describes (an int option stays int, a float one float). */
function typed(v: unknown, schema: z.ZodTypeAny | undefined): PyValue | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return py.int(v);
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  const s = schema ? inner(schema) : undefined;
  const isInt = s instanceof z.ZodNumber ? s.isInt : s instanceof z.ZodLiteral ? true : Number.isInteger(v);
  return isInt && Number.isSafeInteger(v) ? py.int(v) : py.float(v);
}

export interface OptionSources {
  model: ModelConfig;
  data: { dataName: string; dataPath: string; vocabPath?: string };
  /** vsl's training options (camelCase, as `vsl train` saves them), if any */
  train?: Record<string, unknown>;
  /** the reference's own opt, if the model came from a reference checkpoint (snake_case) */
  referenceOpt?: Record<string, unknown>;
}

/**
 * The reference's `opt` for a model: opts.py's options in its order, then vocab_size, then any other attribute
 * the reference's own opt had. The model's options come from its config, the data's from `data`, the rest from
 * vsl's training options, else the reference's opt, else the defaults.
 */
export function referenceOpt(src: OptionSources): Map<string, PyValue> {
  const c = src.model;
  const fromModel: Record<string, unknown> = {
    module: c.module,
    imgDim: c.imgDim,
    wordDim: c.wordDim,
    embedSize: c.embedSize,
    simDim: c.simDim,
    numLayers: c.numLayers,
    biGru: c.biGru,
    noImgnorm: c.noImgNorm,
    noTxtnorm: c.noTxtNorm,
    sgrStep: c.sgrStep,
    dataName: src.data.dataName,
    dataPath: src.data.dataPath,
    vocabPath: src.data.vocabPath ?? src.data.dataPath,
  };
  const ref = src.referenceOpt ?? {};
  const out = new Map<string, PyValue>();
  for (const [name, key, dflt] of REFERENCE_OPTS) {
    const schema = key ? TRAIN_OPTION_TABLE[key]?.schema : undefined;
    const v =
      (key ? typed(fromModel[key] ?? src.train?.[key], schema) : undefined) ??
      typed(ref[name], schema) ??
      dflt ??
      typed(schema?.safeParse(undefined).data, schema);
    if (v === undefined) throw new Error(`referenceOpt: no value for ${name}`);
    out.set(name, v);
  }
  out.set('vocab_size', py.int(c.vocabSize));
  for (const [k, v] of Object.entries(ref)) {
    const t = typed(v, undefined);
    if (!out.has(k) && t !== undefined) out.set(k, t);
  }
  return out;
}
