// Every option of the reference's opts.py (SPEC §9), with its default, plus vsl's own; one zod schema
// checks config files (unknown keys are an error naming the key) and the merged result.
import fs from 'node:fs';
import { z } from 'zod';
import { VslError } from '../util/errors.js';
import { defaultModelConfig, type ModelConfig } from '../model/config.js';

export const TrainOptionsSchema = z
  .object({
    dataPath: z.string().default('./data'),
    dataName: z.string().default('coco_precomp'),
    vocabPath: z.string().optional(), // folder holding <data_name>_vocab.json; default: the data path
    modelName: z.string().default('./checkpoint'), // the run directory
    batchSize: z.number().int().min(2).default(128),
    numEpochs: z.number().int().min(1).default(40),
    lrUpdate: z.number().int().min(1).default(30),
    learningRate: z.number().positive().default(0.0002),
    logStep: z.number().int().min(1).default(10),
    valStep: z.number().int().min(1).default(1000),
    gradClip: z.number().default(2.0),
    margin: z.number().default(0.2),
    maxViolation: z.boolean().default(true),
    imgDim: z.number().int().min(1).default(2048),
    wordDim: z.number().int().min(1).default(300),
    embedSize: z.number().int().min(1).default(1024),
    simDim: z.number().int().min(1).default(256),
    numLayers: z.literal(1).default(1),
    biGru: z.boolean().default(true),
    noImgnorm: z.boolean().default(false),
    noTxtnorm: z.boolean().default(false),
    module: z.enum(['SGR', 'SAF']).default('SGR'),
    sgrStep: z.number().int().min(1).default(3),
    // vsl's own
    seed: z.number().int().default(0),
    semanticLoss: z.enum(['visual', 'visual+textual', 'none']).default('visual'),
    warmupSumEpochs: z.number().int().min(0).default(0), // epochs of the summed hinge before hardest negatives
    semanticWarmupEpochs: z.number().int().min(0).default(0), // epochs without the semantic term before it joins
    dropout: z.number().min(0).max(0.95).default(0.4),
    chunkMb: z.number().positive().default(1024), // device memory budget of one scoring chunk in training
    maxDevCaptions: z.number().int().min(5).default(5000),
    workers: z.number().int().min(1).max(2).optional(), // threads for a step's score block (default: 2 on wasm/cpu, 1 native)
    backend: z.string().default('auto'),
    resume: z.string().optional(),
  })
  .strict();

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
  const known = new Set(Object.keys(TrainOptionsSchema.shape));
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
  return defaultModelConfig({
    module: o.module,
    vocabSize,
    imgDim: o.imgDim,
    wordDim: o.wordDim,
    embedSize: o.embedSize,
    simDim: o.simDim,
    numLayers: o.numLayers,
    biGru: o.biGru,
    noImgNorm: o.noImgnorm,
    noTxtNorm: o.noTxtnorm,
    sgrStep: o.sgrStep,
  });
}
