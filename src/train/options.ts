// The options of `vsl train`, written once: every option of the reference's opts.py with its default,
// plus vsl's own, each with its flag and help text. The zod schema checks config files (unknown keys are an
// error naming the key) and the merged result; the commander flags (cli/train.ts) and the model defaults
// (model/config.ts) are derived from this table.
import fs from 'node:fs';
import { z } from 'zod';
import { VslError } from '../util/errors.js';
import { DEFAULT_CHUNK_MB } from '../ops/memoryGuard.js';
import { DROPOUT, MODEL_OPTIONS, modelConfigFromOptions, type ModelConfig } from '../model/config.js';
import { opt, shapeOf, type OptionSpec } from '../util/optionSpec.js';
import { moduleNames } from '../model/modules.js';

/** Training options that are not the model's (the model's are in model/config.ts, MODEL_OPTIONS). */
const TRAIN_OPTIONS = {
  dataPath: opt(z.string().default('./data'), '--data-path <dir>', 'root holding <data_name>/'),
  dataName: opt(z.string().default('coco_precomp'), '--data-name <name>', 'coco_precomp or f30k_precomp'),
  vocabPath: opt(
    z.string().optional(),
    '--vocab-path <dir>',
    'folder holding <data_name>_vocab.json (default: the data path)',
  ),
  modelName: opt(
    z.string().default('./checkpoint'),
    '--model-name <dir>',
    'run directory: checkpoints, train.log, metrics.jsonl',
  ),
  batchSize: opt(z.number().int().min(2).default(128), '--batch-size <n>', 'training mini-batch'),
  numEpochs: opt(z.number().int().min(1).default(40), '--num-epochs <n>', 'epochs'),
  lrUpdate: opt(z.number().int().min(1).default(30), '--lr-update <n>', 'epochs between x0.1 learning-rate decays'),
  learningRate: opt(z.number().positive().default(0.0002), '--learning-rate <lr>', 'initial Adam learning rate'),
  logStep: opt(z.number().int().min(1).default(10), '--log-step <n>', 'iterations between log lines'),
  valStep: opt(z.number().int().min(1).default(1000), '--val-step <n>', 'iterations between extra validations'),
  gradClip: opt(z.number().default(2.0), '--grad-clip <x>', 'global gradient-norm clip, <= 0 disables'),
  margin: opt(z.number().default(0.2), '--margin <x>', 'hinge margin'),
  maxViolation: opt(
    z.boolean().default(true),
    '--no-max-violation',
    'sum the hinge over all negatives (the reference: passing --max_violation)',
  ),
  // vsl's own
  seed: opt(z.number().int().default(0), '--seed <n>', 'seed of the initialisation, data order and dropout'),
  semanticLoss: opt(
    z.enum(['visual', 'visual+textual', 'none']).default('visual'),
    '--semantic-loss <kind>',
    'semantic loss',
  ),
  warmupSumEpochs: opt(
    z.number().int().min(0).default(0),
    '--warmup-sum-epochs <n>',
    'epochs of the summed hinge before hardest negatives (demo recipe)',
  ),
  semanticWarmupEpochs: opt(
    z.number().int().min(0).default(0),
    '--semantic-warmup-epochs <n>',
    'epochs of the hinge alone before the semantic loss joins (demo recipe)',
  ),
  dropout: opt(
    z.number().min(0).max(0.95).default(DROPOUT),
    '--dropout <p>',
    "probability of the model's five dropouts (word embeddings, both branches of VisualSA and TextSA); 0 turns them all off",
  ),
  chunkMb: opt(
    z.number().positive().default(DEFAULT_CHUNK_MB),
    '--chunk-mb <mb>',
    'device memory budget of one scoring chunk',
  ),
  workers: opt(
    z.number().int().min(1).max(2).optional(),
    '--workers <n>',
    'threads for the caption encoder and the score block of a training step: 1, or 2 (a worker thread encodes and scores part of the captions); default 2 on wasm/cpu, 1 on the native backends',
  ),
  valWorkers: opt(
    z.number().int().min(1).optional(),
    '--val-workers <n>',
    'threads that score a validation: 1 = the main thread alone, n = it and n-1 score workers; default: as many as fit the 4 GiB bound beside the memory the training step holds, up to the cores (1 for small dev splits)',
  ),
  valEngine: opt(
    z.enum(['auto', 'onnx', 'tfjs']).default('auto'),
    '--val-engine <name>',
    'engine that scores a validation: auto (onnx where onnxruntime-node loads and the module has a graph, else tfjs), onnx or tfjs; the weights go to ONNX Runtime in memory at each validation, training stays on tfjs',
  ),
  maxDevCaptions: opt(
    z.number().int().min(5).default(5000),
    '--max-dev-captions <n>',
    'validation on the first n dev captions',
  ),
  backend: opt(z.string().default('auto'), '--backend <name>', 'auto, tensorflow-gpu, tensorflow, wasm or cpu'),
  initFrom: opt(
    z.string().optional(),
    '--init-from <file>',
    "start from a checkpoint's weights (a vsl .h5 or a SGRAF/VSL .pth.tar): fresh optimizer, epoch 0, every other option from here",
  ),
  resume: opt(
    z.string().optional(),
    '--resume <file>',
    "continue a run: vsl's checkpoint_last.h5, or the reference's checkpoint_N.pth.tar / model_best.pth.tar (Adam restarts)",
  ),
};

/** Every option of `vsl train`, in the order of --help: the reference's (data, training, model), then vsl's own. */
export const TRAIN_OPTION_TABLE: Record<string, OptionSpec> = (() => {
  const entries = Object.entries(TRAIN_OPTIONS);
  const cut = entries.findIndex(([k]) => k === 'seed'); // the reference's training options end here
  return { ...Object.fromEntries(entries.slice(0, cut)), ...MODEL_OPTIONS, ...Object.fromEntries(entries.slice(cut)) };
})();

const TrainOptionsShape = { ...shapeOf(MODEL_OPTIONS), ...shapeOf(TRAIN_OPTIONS) };

const TrainOptionsSchema = z
  .object(TrainOptionsShape)
  .strict()
  .superRefine((o, ctx) => {
    if (!moduleNames().includes(o.module))
      ctx.addIssue({ code: 'custom', path: ['module'], message: `expected one of ${moduleNames().join(', ')}` });
  });

export type TrainOptions = z.infer<typeof TrainOptionsSchema>;

/** Read a config file: JSON with the option names above (camelCase); unknown keys are an error. */
export function readConfigFile(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new VslError(`${file}: expected a JSON config file, found ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new VslError(`${file}: expected a JSON object of options`);
  const known = new Set(Object.keys(TrainOptionsShape));
  for (const k of Object.keys(raw)) {
    if (k === '$comment') continue;
    if (!known.has(k)) throw new VslError(`${file}: unknown option '${k}' (known: ${[...known].join(', ')})`);
  }
  const { $comment: _c, ...rest } = raw as Record<string, unknown>;
  return rest;
}

/** Defaults < config file < command-line flags; validated once. */
export function resolveOptions(
  fromConfig: Record<string, unknown>,
  fromFlags: Record<string, unknown>,
  source: string,
): TrainOptions {
  const r = TrainOptionsSchema.safeParse({ ...fromConfig, ...fromFlags });
  if (!r.success) {
    const i = r.error.issues[0];
    throw new VslError(`${source}: option '${i.path.join('.')}': ${i.message}`);
  }
  return r.data;
}

export function modelConfigOf(o: TrainOptions, vocabSize: number): ModelConfig {
  return modelConfigFromOptions(o, vocabSize);
}
