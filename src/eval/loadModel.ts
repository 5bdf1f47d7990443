// Load a trained model for evaluation from any of the files vsl understands, recognised by content (not name):
//
//   "\x89HDF"   an HDF5 file: either vsl's own checkpoint (attribute format = "vsl-checkpoint-1", options in
//               options_json) or a reference/golden-style file (a `weights/` group plus an `opt_json`
//               attribute holding the PyTorch argparse options, as test/fixtures/torch/*.h5).
//   "PK\x03\x04" a torch >= 1.6 zip `*.pth.tar` (SGRAF / VSL checkpoint)
//   "\x80\x02"  a legacy torch pickle `*.pth.tar`
//
// Two steps, because the vocabulary size is only known once the vocabulary is loaded, and the vocabulary's
// location comes from the checkpoint's own options:
//   readModelFile(path)            -> ModelFile (arrays + options, nothing built yet)
//   buildModel(file, vocabSize?)   -> LoadedModel (a ParamRegistry that fits the weights)
// `loadModel(path, {vocabSize})` does both. As the reference, the embedding must have exactly one row per word
// of the vocabulary actually loaded (the reference resets opt.vocab_size from it and then the strict load
// fails); a mismatch is a VslError naming both numbers.
//
// Options are always returned in vsl's checkpoint shape { model: ModelConfig, data: { dataName, dataPath,
// vocabPath }, train: {...} }; for a PyTorch file they are built from `opt` (fromReferenceOpt, data_name,
// data_path, vocab_path) and `train` keeps the JSON-safe remainder of `opt` under `train.referenceOpt`.
import fs from 'node:fs';
import { anyToString, badInput, VslError } from '../util/errors.js';
import { CHECKPOINT_FORMAT, loadCheckpoint, loadWeightsGroup } from '../io/checkpoint.js';
import { readH5 } from '../io/h5.js';
import { flattenModel, readTorchCheckpoint } from '../io/sgrafCheckpoint.js';
import { defaultModelConfig, fromReferenceOpt, type ModelConfig } from '../model/config.js';
import { ParamRegistry, type HostArray } from '../model/params.js';
import { moduleNames } from '../model/modules.js';

export type ModelSource = 'vsl-hdf5' | 'hdf5-weights' | 'torch-zip' | 'torch-legacy';

interface ModelDataOptions {
  dataName: string;
  dataPath: string;
  /** Folder holding `<dataName>_vocab.json` (may be absent: then the data path is used). */
  vocabPath?: string;
}

/** vsl's checkpoint options (written by `vsl train`, or built from a PyTorch `opt`). */
interface ModelOptions {
  model: ModelConfig;
  data: ModelDataOptions;
  train: Record<string, unknown>;
}

/** A model file read into memory, before a registry is built. */
export interface ModelFile {
  path: string;
  source: ModelSource;
  /** Config from the file; vocabSize as stored (0 if unknown). */
  config: ModelConfig;
  arrays: Map<string, HostArray>;
  options: ModelOptions;
  epoch: number;
  iteration: number;
  bestRsum: number;
}

export interface LoadedModel {
  path: string;
  source: ModelSource;
  config: ModelConfig;
  reg: ParamRegistry;
  options: ModelOptions;
  epoch: number;
  iteration: number;
  bestRsum: number;
}

const EMBED_KEY = 'txt_enc.embed.weight';

/** The container of a model file, from its first bytes. */
export function detectModelFormat(path: string): 'hdf5' | 'zip' | 'legacy' {
  if (!fs.existsSync(path)) throw new VslError(`${path}: model file not found`);
  if (fs.statSync(path).isDirectory()) throw badInput(path, 'model file', 'a checkpoint file', 'a directory');
  const fd = fs.openSync(path, 'r');
  const head = Buffer.alloc(8);
  let n: number;
  try {
    n = fs.readSync(fd, head, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (n >= 4 && head[0] === 0x89 && head[1] === 0x48 && head[2] === 0x44 && head[3] === 0x46) return 'hdf5';
  if (n >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'zip';
  if (n >= 2 && head[0] === 0x80 && head[1] <= 5) return 'legacy';
  const shown = [...head.subarray(0, n)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw badInput(
    path,
    'file header',
    'a model checkpoint (HDF5 "\\x89HDF", torch zip "PK\\x03\\x04" or legacy torch pickle "\\x80\\x02")',
    n === 0 ? 'an empty file' : `bytes ${shown}`,
  );
}

function str(v: unknown, d: string): string {
  return typeof v === 'string' && v.length > 0 ? v : d;
}

/** JSON-safe copy of a reference `opt` (numbers, strings, booleans, null, plain arrays of those). */
function jsonSafe(opt: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opt)) {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'number') out[k] = Number.isFinite(v) ? v : String(v);
    else if (typeof v === 'bigint') out[k] = Number(v);
    else if (
      Array.isArray(v) &&
      v.every((x) => typeof x === 'number' || typeof x === 'string' || typeof x === 'boolean')
    )
      out[k] = [...v];
  }
  return out;
}

/** vsl options from a reference argparse `opt` (a PyTorch checkpoint or a golden file's opt_json). */
function optionsFromReferenceOpt(opt: Record<string, unknown>): ModelOptions {
  return {
    model: fromReferenceOpt(opt),
    data: {
      dataName: str(opt.data_name, 'coco_precomp'),
      dataPath: str(opt.data_path, './data'),
      ...(typeof opt.vocab_path === 'string' && opt.vocab_path ? { vocabPath: opt.vocab_path } : {}),
    },
    train: { referenceOpt: jsonSafe(opt) },
  };
}

const MODEL_NUMBER_FIELDS = ['vocabSize', 'imgDim', 'wordDim', 'embedSize', 'simDim', 'numLayers', 'sgrStep'] as const;
const MODEL_BOOL_FIELDS = ['biGru', 'noImgNorm', 'noTxtNorm'] as const;

/** Check the options JSON of a vsl checkpoint and fill what may be missing. */
function parseVslOptions(raw: Record<string, unknown>, file: string): ModelOptions {
  const m = raw.model;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) {
    throw badInput(
      file,
      'options_json.model',
      'an object with the model configuration (module, dims, ...)',
      m === undefined ? 'no such field' : JSON.stringify(m),
    );
  }
  const mo = m as Record<string, unknown>;
  if (typeof mo.module !== 'string' || !moduleNames().includes(mo.module))
    throw badInput(file, 'options_json.model.module', `one of ${moduleNames().join(', ')}`, JSON.stringify(mo.module));
  for (const k of MODEL_NUMBER_FIELDS) {
    if (mo[k] !== undefined && (typeof mo[k] !== 'number' || !Number.isSafeInteger(mo[k]) || mo[k] < 0)) {
      throw badInput(file, `options_json.model.${k}`, 'a non-negative integer', JSON.stringify(mo[k]));
    }
  }
  for (const k of MODEL_BOOL_FIELDS) {
    if (mo[k] !== undefined && typeof mo[k] !== 'boolean')
      throw badInput(file, `options_json.model.${k}`, 'a boolean', JSON.stringify(mo[k]));
  }
  const config = defaultModelConfig({ ...(mo as Partial<ModelConfig>) });
  const d = (typeof raw.data === 'object' && raw.data !== null ? raw.data : {}) as Record<string, unknown>;
  const t = (typeof raw.train === 'object' && raw.train !== null ? raw.train : {}) as Record<string, unknown>;
  return {
    model: config,
    data: {
      dataName: str(d.dataName, str(t.dataName, 'coco_precomp')),
      dataPath: str(d.dataPath, str(t.dataPath, './data')),
      ...(typeof d.vocabPath === 'string' && d.vocabPath ? { vocabPath: d.vocabPath } : {}),
    },
    train: t,
  };
}

function attrNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

async function readHdf5Model(path: string): Promise<ModelFile> {
  const { format, optJson, epoch, iters, best } = await readH5(path, (r) => ({
    format: r.attr('format'),
    optJson: r.attr('opt_json'),
    epoch: attrNumber(r.attr('epoch')),
    iters: attrNumber(r.attr('Eiters')),
    best: attrNumber(r.attr('best_rsum')),
  }));
  if (format !== undefined) {
    if (format !== CHECKPOINT_FORMAT)
      throw badInput(path, 'attribute format', `"${CHECKPOINT_FORMAT}"`, JSON.stringify(format));
    const ck = await loadCheckpoint(path);
    const options = parseVslOptions(ck.options, path);
    return {
      path,
      source: 'vsl-hdf5',
      config: options.model,
      arrays: ck.weights,
      options,
      epoch: ck.epoch,
      iteration: ck.iteration,
      bestRsum: ck.bestRsum,
    };
  }
  if (optJson === undefined) {
    throw badInput(
      path,
      'attributes',
      `format = "${CHECKPOINT_FORMAT}" (a vsl checkpoint) or opt_json (weights/ group with reference options)`,
      'neither',
    );
  }
  let opt: unknown;
  try {
    opt = JSON.parse(anyToString(optJson));
  } catch (e) {
    throw badInput(path, 'attribute opt_json', 'valid JSON', `invalid JSON (${(e as Error).message})`);
  }
  if (typeof opt !== 'object' || opt === null || Array.isArray(opt))
    throw badInput(path, 'attribute opt_json', 'a JSON object', anyToString(optJson).slice(0, 60));
  const options = optionsFromReferenceOpt(opt as Record<string, unknown>);
  const arrays = (await loadWeightsGroup(path, 'weights')) as Map<string, HostArray>;
  return {
    path,
    source: 'hdf5-weights',
    config: options.model,
    arrays,
    options,
    epoch: epoch ?? 0,
    iteration: iters ?? 0,
    bestRsum: best ?? 0,
  };
}

async function readTorchModel(path: string, format: 'zip' | 'legacy'): Promise<ModelFile> {
  const ck = await readTorchCheckpoint(path);
  const options = optionsFromReferenceOpt(ck.opt);
  const arrays = new Map<string, HostArray>();
  for (const [k, t] of flattenModel(ck)) {
    // bool/uint8 tensors have no place in these models; fromArrays reports them as unexpected keys or shapes.
    const data = t.data instanceof Uint8Array ? Float32Array.from(t.data) : t.data;
    arrays.set(k, { shape: [...t.shape], data });
  }
  return {
    path,
    source: format === 'zip' ? 'torch-zip' : 'torch-legacy',
    config: options.model,
    arrays,
    options,
    epoch: ck.epoch ?? 0,
    iteration: ck.eiters ?? 0,
    bestRsum: ck.bestRsum ?? 0,
  };
}

/** Read any supported model file (see the header), without building the model. */
export async function readModelFile(path: string): Promise<ModelFile> {
  const format = detectModelFormat(path);
  return format === 'hdf5' ? readHdf5Model(path) : readTorchModel(path, format);
}

/**
 * Build the registry. `vocabSize` is the size of the vocabulary that will encode the captions: the
 * embedding must have exactly that many rows. Without it, the embedding's row count is used.
 */
export function buildModel(file: ModelFile, vocabSize?: number): LoadedModel {
  const embed = file.arrays.get(EMBED_KEY);
  if (!embed) {
    // fromArrays would list it among the missing keys, with every other problem.
    ParamRegistry.fromArrays(
      defaultModelConfig({ ...file.config, vocabSize: Math.max(vocabSize ?? 0, 1) }),
      file.arrays,
      file.path,
    );
    throw new VslError(`${file.path}: missing key ${EMBED_KEY}`);
  }
  if (embed.shape.length !== 2)
    throw badInput(file.path, EMBED_KEY, 'a 2-D array [vocab, word_dim]', `shape [${embed.shape.join(',')}]`);
  const rows = embed.shape[0];
  if (vocabSize !== undefined && vocabSize !== rows) {
    throw new VslError(
      `${file.path}: the vocabulary has ${vocabSize} words but the model's word embedding (${EMBED_KEY}) has ${rows} rows` +
        (file.config.vocabSize && file.config.vocabSize !== rows
          ? ` (its options say vocab_size ${file.config.vocabSize})`
          : '') +
        '; use the vocabulary the model was trained with (--vocab-path)',
    );
  }
  const config = defaultModelConfig({ ...file.config, vocabSize: rows });
  const reg = ParamRegistry.fromArrays(config, file.arrays, file.path);
  return {
    path: file.path,
    source: file.source,
    config,
    reg,
    options: { ...file.options, model: config },
    epoch: file.epoch,
    iteration: file.iteration,
    bestRsum: file.bestRsum,
  };
}

/** readModelFile + buildModel. */
export async function loadModel(path: string, opts: { vocabSize?: number } = {}): Promise<LoadedModel> {
  return buildModel(await readModelFile(path), opts.vocabSize);
}
