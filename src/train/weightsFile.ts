// The weights a run starts from when they come from a file (--init-from, or --resume of a reference
// checkpoint): any model file vsl reads (a vsl .h5, a SGRAF/VSL .pth.tar in either torch container), checked
// against the model this run's options describe. The command line decides the model; the file must fit it, and
// the first key that does not (in state_dict order) is named with both shapes and the options that differ.
import { readModelFile, type ModelFile } from '../eval/loadModel.js';
import type { ModelConfig } from '../model/config.js';
import { paramSpecs, ParamRegistry, type HostArray } from '../model/params.js';
import { badInput } from '../util/errors.js';
import { detectModule, moduleNames, moduleOf } from '../model/modules.js';

/** A model's options as far as its arrays tell them (flat state_dict names, PyTorch shapes). */
function configOfArrays(arrays: ReadonlyMap<string, HostArray>): Partial<ModelConfig> {
  const dim = (key: string, axis: number) => arrays.get(key)?.shape[axis];
  const out: Partial<ModelConfig> = {
    vocabSize: dim('txt_enc.embed.weight', 0),
    wordDim: dim('txt_enc.embed.weight', 1),
    imgDim: dim('img_enc.fc.weight', 1),
    embedSize: dim('img_enc.fc.weight', 0),
    simDim: dim('sim_enc.sim_eval_w.weight', 1),
    biGru: arrays.has('txt_enc.cap_rnn.weight_ih_l0_reverse'),
  };
  return { ...out, ...detectModule([...arrays.keys()]) };
}

const FLAGS: [keyof ModelConfig, string][] = [
  ['module', '--module'],
  ['sgrStep', '--sgr-step'],
  ['imgDim', '--img-dim'],
  ['wordDim', '--word-dim'],
  ['embedSize', '--embed-size'],
  ['simDim', '--sim-dim'],
  ['biGru', '--no-bi-gru'],
];

/** Whether option k shapes this run's model: every option but those of a module other than the run's. */
function mattersTo(run: ModelConfig, k: keyof ModelConfig): boolean {
  if (moduleOf(run).ownOptions.includes(k)) return true;
  return !moduleNames().some((n) => moduleOf({ module: n }).ownOptions.includes(k));
}

/** What differs between the file's model and this run's, as the flags that would make them agree. */
function differences(file: Partial<ModelConfig>, run: ModelConfig, vocabFile: string): string[] {
  const out: string[] = [];
  for (const [k, flag] of FLAGS) {
    const f = file[k];
    if (f === undefined || f === run[k] || !mattersTo(run, k)) continue;
    if (k === 'biGru')
      out.push(f ? 'a bidirectional GRU (this run: --no-bi-gru)' : 'a unidirectional GRU (--no-bi-gru)');
    else out.push(`${flag} ${f} (this run: ${run[k]})`);
  }
  if (file.vocabSize !== undefined && file.vocabSize !== run.vocabSize)
    out.push(`a vocabulary of ${file.vocabSize} words (this run: ${run.vocabSize} in ${vocabFile})`);
  return out;
}

const shown = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Check that `arrays` fit the model of `config`: every key of its state_dict present with its shape, no other
 * key. Throws a VslError naming the first offending key, both shapes and the options in which the file's model
 * differs from this run's.
 */
export function checkWeightsFit(
  config: ModelConfig,
  arrays: ReadonlyMap<string, HostArray>,
  file: string,
  vocabFile: string,
): void {
  const specs = paramSpecs(config);
  const expected = new Set(specs.map((s) => s.name));
  const hint = () => {
    const d = differences(configOfArrays(arrays), config, vocabFile);
    return d.length ? `; the file's model differs from this run's in ${d.join(', ')}` : '';
  };
  for (const s of specs) {
    const a = arrays.get(s.name);
    if (!a) throw badInput(file, s.name, `shape ${shown(s.shape)} (this run's model)`, `no such key${hint()}`);
    if (a.shape.length !== s.shape.length || a.shape.some((d, i) => d !== s.shape[i]))
      throw badInput(file, s.name, `shape ${shown(s.shape)} (this run's model)`, `${shown(a.shape)}${hint()}`);
  }
  for (const [k, a] of arrays) {
    if (!expected.has(k))
      throw badInput(file, k, "no such key in this run's model", `an array of shape ${shown(a.shape)}${hint()}`);
  }
}

export interface WeightsFromFile {
  reg: ParamRegistry;
  file: ModelFile;
  /** the state_dict keys taken from the file, in order */
  keys: string[];
}

/** Read a model file, check it fits this run's model and build the registry from it. */
export async function weightsFromFile(path: string, config: ModelConfig, vocabFile: string): Promise<WeightsFromFile> {
  const file = await readModelFile(path);
  checkWeightsFit(config, file.arrays, path, vocabFile);
  const reg = ParamRegistry.fromArrays(config, file.arrays, path);
  return { reg, file, keys: reg.names() };
}

/**
 * Options the shapes cannot show (the l2 norms after the encoders) in which the file's own options differ from
 * this run's: the same weights then compute another function, which is worth a warning, not an error.
 */
export function unshapedDifferences(file: ModelFile, config: ModelConfig): string[] {
  const ref = (file.options.train.referenceOpt ?? {}) as Record<string, unknown>;
  const declared = file.source === 'vsl-hdf5' || 'no_imgnorm' in ref;
  if (!declared) return [];
  const out: string[] = [];
  if (file.config.noImgNorm !== config.noImgNorm)
    out.push(`no_imgnorm ${file.config.noImgNorm} (this run: ${config.noImgNorm})`);
  if (file.config.noTxtNorm !== config.noTxtNorm)
    out.push(`no_txtnorm ${file.config.noTxtNorm} (this run: ${config.noTxtNorm})`);
  return out;
}
