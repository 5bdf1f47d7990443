// The SGRAF / VSL checkpoint dict inside a torch.save file: {epoch, model, best_rsum, opt, Eiters}, with `model`
// either [img_enc, txt_enc, sim_enc] state dicts (the reference's layout) or one flat state dict.
import { anyToString, badInput, VslError } from '../util/errors.js';
import { isTuple, PyObject } from './pickle.js';
import { readTorchFile } from './torch.js';
import { TorchTensor, type StateDict } from './torchTensor.js';

export interface TorchCheckpoint {
  epoch?: number;
  /** [img_enc, txt_enc, sim_enc] (layout 'split'), or a single flat state dict (layout 'flat'). */
  model: StateDict[];
  bestRsum?: number;
  /** The attributes of the pickled argparse.Namespace (or dict) `opt`; {} when the file has none. */
  opt: Record<string, unknown>;
  eiters?: number;
  /** The whole unpickled top-level object (dicts are Maps, tensors TensorRecords). */
  raw: unknown;
  layout?: 'split' | 'flat';
  format?: 'zip' | 'legacy';
}

export const MODEL_PARTS = ['img_enc', 'txt_enc', 'sim_enc'] as const;
function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v instanceof TorchTensor) return `a tensor [${v.shape.join(',')}]`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (Array.isArray(v)) return `a ${isTuple(v) ? 'tuple' : 'list'} of ${v.length}`;
  if (v instanceof PyObject) return `a ${v.className}`;
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${anyToString(v)}`;
}

function toStateDict(v: unknown, file: string, field: string): StateDict | null {
  if (!(v instanceof Map)) return null;
  const sd: StateDict = new Map();
  for (const [k, t] of v) {
    if (typeof k !== 'string') throw badInput(file, field, 'string keys', describeValue(k));
    if (!(t instanceof TorchTensor)) throw badInput(file, `${field}['${k}']`, 'a tensor', describeValue(t));
    sd.set(k, t);
  }
  return sd;
}

function optionalNumber(v: unknown, file: string, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof TorchTensor && v.data.length === 1) return Number(v.data[0]);
  throw badInput(file, field, 'a number', describeValue(v));
}

function plainObject(entries: Iterable<[string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries)
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** Interpret an unpickled checkpoint dict {epoch, model, best_rsum, opt, Eiters} (`file` names it in errors). */
export function toCheckpoint(value: unknown, file: string, format?: 'zip' | 'legacy'): TorchCheckpoint {
  if (!(value instanceof Map))
    throw badInput(file, 'top-level object', 'a dict {epoch, model, best_rsum, opt, Eiters}', describeValue(value));
  if (!value.has('model'))
    throw badInput(
      file,
      'model',
      "a 'model' key in the checkpoint dict",
      `keys ${[...value.keys()].map(String).join(', ') || '(none)'}`,
    );
  const m: unknown = value.get('model');
  let model: StateDict[];
  let layout: 'split' | 'flat';
  const flat = toStateDict(m, file, 'model');
  if (flat) {
    model = [flat];
    layout = 'flat';
  } else if (Array.isArray(m) && m.length === 3) {
    model = m.map((sd, i) => {
      const d = toStateDict(sd, file, `model[${i}] (${MODEL_PARTS[i]})`);
      if (!d) throw badInput(file, `model[${i}] (${MODEL_PARTS[i]})`, 'a state dict', describeValue(sd));
      return d;
    });
    layout = 'split';
  } else
    throw badInput(
      file,
      'model',
      'a list of 3 state dicts [img_enc, txt_enc, sim_enc] or one flat state dict',
      describeValue(m),
    );
  const o: unknown = value.get('opt');
  let opt: Record<string, unknown>;
  if (o === undefined || o === null) opt = {};
  else if (o instanceof PyObject) opt = plainObject(Object.entries(o.attrs));
  else if (o instanceof Map && [...o.keys()].every((k) => typeof k === 'string'))
    opt = plainObject(o as Map<string, unknown>);
  else throw badInput(file, 'opt', 'an argparse.Namespace or a dict', describeValue(o));
  return {
    epoch: optionalNumber(value.get('epoch'), file, 'epoch'),
    model,
    bestRsum: optionalNumber(value.get('best_rsum'), file, 'best_rsum'),
    opt,
    eiters: optionalNumber(value.get('Eiters'), file, 'Eiters'),
    raw: value,
    layout,
    format,
  };
}

/** Read an SGRAF / VSL checkpoint (`*.pth.tar`) in either container, with no Python and no code execution. */
export async function readTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  const f = await readTorchFile(path);
  return toCheckpoint(f.value, path, f.format);
}

/**
 * One state dict with vsl's key names: `img_enc.`, `txt_enc.`, `sim_enc.` prefixes for a split checkpoint; a flat
 * checkpoint's keys are kept as they are.
 */
export function flattenModel(ckpt: TorchCheckpoint): StateDict {
  if (ckpt.model.length === 1) return new Map(ckpt.model[0]);
  if (ckpt.model.length !== 3)
    throw new VslError(
      `checkpoint model: expected 3 state dicts [img_enc, txt_enc, sim_enc] or 1 flat one, found ${ckpt.model.length}`,
    );
  const out: StateDict = new Map();
  ckpt.model.forEach((sd, i) => {
    for (const [k, t] of sd) out.set(`${MODEL_PARTS[i]}.${k}`, t);
  });
  return out;
}
