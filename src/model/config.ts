// Architecture options of one SGR or SAF model, with the reference's defaults (SPEC §9).
// The names are camelCase forms of the reference's opts.py names; `fromReferenceOpt` maps a checkpoint's opt.
export type ModuleName = 'SGR' | 'SAF';

export interface ModelConfig {
  module: ModuleName;
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

export function defaultModelConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    module: 'SGR',
    vocabSize: 0,
    imgDim: 2048,
    wordDim: 300,
    embedSize: 1024,
    simDim: 256,
    numLayers: 1,
    biGru: true,
    noImgNorm: false,
    noTxtNorm: false,
    sgrStep: 3,
    ...over,
  };
}

/** Map the reference's argparse options (snake_case, as stored in checkpoints and golden files) to a config. */
export function fromReferenceOpt(opt: Record<string, unknown>): ModelConfig {
  const num = (k: string, d: number) => (typeof opt[k] === 'number' ? (opt[k] as number) : d);
  const bool = (k: string, d: boolean) => (typeof opt[k] === 'boolean' ? (opt[k] as boolean) : d);
  const module = opt.module_name === 'SAF' ? 'SAF' : 'SGR';
  return defaultModelConfig({
    module,
    vocabSize: num('vocab_size', 0),
    imgDim: num('img_dim', 2048),
    wordDim: num('word_dim', 300),
    embedSize: num('embed_size', 1024),
    simDim: num('sim_dim', 256),
    numLayers: num('num_layers', 1),
    biGru: bool('bi_gru', true),
    noImgNorm: bool('no_imgnorm', false),
    noTxtNorm: bool('no_txtnorm', false),
    sgrStep: num('sgr_step', 3),
  });
}
