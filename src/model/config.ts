// Architecture options of one SGR or SAF model, with the reference's defaults.
// The names are camelCase forms of the reference's opts.py names; `fromReferenceOpt` maps a checkpoint's opt.
import { z } from 'zod';
import { opt, shapeOf } from '../util/optionSpec.js';

export interface ModelConfig {
  module: string; // a similarity module of model/modules.ts
  vocabSize: number;
  imgDim: number; // region feature dim (2048)
  wordDim: number; // word embedding dim (300)
  embedSize: number; // joint space D (1024)
  simDim: number; // similarity vector S (256)
  numLayers: number; // GRU layers (only 1 is supported, as every published model)
  biGru: boolean;
  noImgNorm: boolean;
  noTxtNorm: boolean;
  sgrStep: number;
}

/** Hard-coded constants of the reference (no options there either). */
export const REGIONS = 36;
export const DROPOUT = 0.4;
export const LEAKY_SLOPE = 0.1;
export const ATTN_SMOOTH = 9.0;
export const NORM_EPS = 1e-8;
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/**
 * The model's options with their defaults (the reference's opts.py), flags and help: written once here; the
 * training options (train/options.ts) extend this table, and defaultModelConfig reads its defaults.
 */
export const MODEL_OPTIONS = {
  imgDim: opt(z.number().int().min(1).default(2048), '--img-dim <n>', 'region feature dim'),
  wordDim: opt(z.number().int().min(1).default(300), '--word-dim <n>', 'word embedding dim'),
  embedSize: opt(z.number().int().min(1).default(1024), '--embed-size <n>', 'joint space dim'),
  simDim: opt(z.number().int().min(1).default(256), '--sim-dim <n>', 'similarity vector dim'),
  numLayers: opt(z.literal(1).default(1), '--num-layers <n>', 'GRU layers (1, as every published model)'),
  biGru: opt(z.boolean().default(true), '--no-bi-gru', 'unidirectional GRU (the reference: passing --bi_gru)'),
  noImgnorm: opt(z.boolean().default(false), '--no-imgnorm', 'skip the l2norm after the image fc'),
  noTxtnorm: opt(z.boolean().default(false), '--no-txtnorm', 'skip the l2norm after the GRU'),
  module: opt(z.string().default('SGR'), '--module <name>', 'similarity module: SGR or SAF (model/modules.ts)'),
  sgrStep: opt(z.number().int().min(1).default(3), '--sgr-step <n>', 'graph reasoning steps'),
};

const ModelOptionsSchema = z.object(shapeOf(MODEL_OPTIONS));
export type ModelOptions = z.infer<typeof ModelOptionsSchema>;

/** A model's config from its options (camelCase, as in vsl's config files) and the vocabulary size. */
export function modelConfigFromOptions(o: ModelOptions, vocabSize: number): ModelConfig {
  return {
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
  };
}

/** The default model (the reference's defaults), with some fields replaced. */
export function defaultModelConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return { ...modelConfigFromOptions(ModelOptionsSchema.parse({}), 0), ...over };
}

/** Map the reference's argparse options (snake_case, as stored in checkpoints and golden files) to a config. */
export function fromReferenceOpt(ref: Record<string, unknown>): ModelConfig {
  const d = defaultModelConfig();
  const num = (k: string, dv: number) => (typeof ref[k] === 'number' ? ref[k] : dv);
  const bool = (k: string, dv: boolean) => (typeof ref[k] === 'boolean' ? ref[k] : dv);
  return {
    module: typeof ref.module_name === 'string' ? ref.module_name : d.module,
    vocabSize: num('vocab_size', d.vocabSize),
    imgDim: num('img_dim', d.imgDim),
    wordDim: num('word_dim', d.wordDim),
    embedSize: num('embed_size', d.embedSize),
    simDim: num('sim_dim', d.simDim),
    numLayers: num('num_layers', d.numLayers),
    biGru: bool('bi_gru', d.biGru),
    noImgNorm: bool('no_imgnorm', d.noImgNorm),
    noTxtNorm: bool('no_txtnorm', d.noTxtNorm),
    sgrStep: num('sgr_step', d.sgrStep),
  };
}
