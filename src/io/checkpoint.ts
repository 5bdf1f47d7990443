// vsl's own checkpoint format: one HDF5 file per checkpoint, written atomically.
//
// Layout ("vsl-checkpoint-1"):
//   /weights/<key>            one contiguous dataset per state_dict entry; float32, or int64 for the 0-d
//                             BatchNorm `num_batches_tracked` buffers. Keys keep PyTorch's dotted names with the
//                             prefixes img_enc. / txt_enc. / sim_enc. (dots are legal in HDF5 link names).
//   /optimizer/m/<key>        Adam first moment per parameter key (only if the checkpoint has optimizer state)
//   /optimizer/v/<key>        Adam second moment per parameter key
//   file attributes:          format = "vsl-checkpoint-1"; options_json, data_order_json, extra_json (JSON
//                             strings); epoch, iteration, optimizer_step (int64); best_rsum (float64).
// Groups are created with link creation order tracked, so maps come back in the order they were saved.
//
// Writing goes to a temporary name beside `path` (tempNameFor); the temp file is closed, reopened to check that it
// holds every key with the right shape, fsynced, and only then renamed onto `path` (rename within one
// directory is atomic on POSIX). On any failure the temp file is removed, the previous file at `path` is left
// untouched, and a VslError names the path and the cause.
import fs from 'node:fs';
import nodePath from 'node:path';
import h5wasm from 'h5wasm/node';
import { anyToString, badInput, systemCause, systemCode, VslError } from '../util/errors.js';
import { tempNameFor } from '../util/atomicFile.js';
import {
  createH5,
  h5,
  h5ErrorSummary,
  h5module,
  numericRecordProblem,
  readH5,
  readNumeric,
  withH5Errors,
  writeNumeric,
  type H5Reader,
} from './h5.js';

export const CHECKPOINT_FORMAT = 'vsl-checkpoint-1';

/** One parameter or buffer: row-major data and its shape ([] for a 0-d tensor). */
export interface ArrayRecord {
  shape: number[];
  data: Float32Array | BigInt64Array; // float32 params/buffers; int64 num_batches_tracked (0-d)
}

interface AdamState {
  step: number;
  m: Map<string, ArrayRecord>;
  v: Map<string, ArrayRecord>;
}

export interface CheckpointData {
  /** keys = PyTorch state_dict names with prefixes img_enc. / txt_enc. / sim_enc. */
  weights: Map<string, ArrayRecord>;
  /** every model/training option (JSON) */
  options: Record<string, unknown>;
  epoch: number;
  iteration: number;
  bestRsum: number;
  /** Adam state per parameter key */
  optimizer?: AdamState;
  /** RNG / shuffle state, JSON */
  dataOrder?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

type H5File = InstanceType<typeof h5wasm.File>;
type H5Group = InstanceType<typeof h5wasm.Group>;

function describe(e: unknown): string {
  if (e instanceof VslError) return e.message;
  if (systemCode(e)) return systemCause(e);
  if (e instanceof Error) return e.message.includes('HDF5-DIAG') ? h5ErrorSummary(e) : e.message;
  return String(e);
}

function jsonAttr(file: string, field: string, value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badInput(
      file,
      field,
      'a JSON object',
      value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value,
    );
  }
  try {
    return JSON.stringify(value);
  } catch (e) {
    throw badInput(file, field, 'JSON-serialisable values', `${(e as Error).message}`);
  }
}

function checkCount(file: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw badInput(file, field, 'a non-negative integer', String(value));
  }
  return value;
}

function writeGroup(
  parent: H5Group,
  name: string,
  records: Map<string, ArrayRecord>,
  file: string,
  prefix: string,
): void {
  const g = parent.create_group(name, true);
  for (const [key, rec] of records) writeNumeric(g, key, rec, file, `${prefix}/${key}`);
}

/** Cross-checks of the optimizer state against the weights (a mismatch is a caller bug, caught before writing). */
function checkOptimizer(file: string, ck: CheckpointData): void {
  const opt = ck.optimizer;
  if (!opt) return;
  checkCount(file, 'optimizer.step', opt.step);
  if (!(opt.m instanceof Map)) throw badInput(file, 'optimizer.m', 'a Map of arrays', typeof opt.m);
  if (!(opt.v instanceof Map)) throw badInput(file, 'optimizer.v', 'a Map of arrays', typeof opt.v);
  for (const key of opt.v.keys()) {
    if (!opt.m.has(key)) throw badInput(file, 'optimizer.m', `an entry for "${key}" (present in optimizer.v)`, 'none');
  }
  for (const [key, m] of opt.m) {
    const w = ck.weights.get(key);
    if (!w) throw badInput(file, `optimizer/m/${key}`, 'the key of a weight', 'a key that is not in weights');
    const v = opt.v.get(key);
    if (v === undefined) throw badInput(file, 'optimizer.v', `an entry for "${key}" (present in optimizer.m)`, 'none');
    for (const [which, r] of [
      ['m', m],
      ['v', v],
    ] as const) {
      const field = `optimizer/${which}/${key}`;
      const problem = numericRecordProblem(r);
      if (problem) throw badInput(file, field, 'a float32 array whose shape matches its data', problem);
      if (!(r.data instanceof Float32Array)) throw badInput(file, field, 'float32 data', 'int64 data');
      if (r.shape.join(',') !== w.shape.join(',')) {
        throw badInput(file, field, `the weight's shape [${w.shape.join(',')}]`, `[${r.shape.join(',')}]`);
      }
    }
  }
}

/**
 * A string attribute of fixed length: stored in the object header, which HDF5 checksums, where a variable-length
 * string would sit in the global heap, which it does not.
 */
function stringAttr(f: H5File, name: string, value: string): void {
  f.create_attribute(name, value, [], `S${Math.max(1, Buffer.byteLength(value))}`);
}

function writeCheckpointFile(f: H5File, target: string, ck: CheckpointData): void {
  stringAttr(f, 'format', CHECKPOINT_FORMAT);
  stringAttr(f, 'options_json', jsonAttr(target, 'options', ck.options));
  if (ck.dataOrder !== undefined) stringAttr(f, 'data_order_json', jsonAttr(target, 'dataOrder', ck.dataOrder));
  if (ck.extra !== undefined) stringAttr(f, 'extra_json', jsonAttr(target, 'extra', ck.extra));
  f.create_attribute('epoch', new BigInt64Array([BigInt(ck.epoch)]), [], '<q');
  f.create_attribute('iteration', new BigInt64Array([BigInt(ck.iteration)]), [], '<q');
  f.create_attribute('best_rsum', new Float64Array([ck.bestRsum]), [], '<d');
  writeGroup(f, 'weights', ck.weights, target, 'weights');
  if (ck.optimizer) {
    f.create_attribute('optimizer_step', new BigInt64Array([BigInt(ck.optimizer.step)]), [], '<q');
    const g = f.create_group('optimizer', true);
    writeGroup(g, 'm', ck.optimizer.m, target, 'optimizer/m');
    writeGroup(g, 'v', ck.optimizer.v, target, 'optimizer/v');
  }
}

/** Cheap check of a freshly written file: the format attribute and every key with its shape (no data read). */
function verifyWritten(f: H5File, ck: CheckpointData): void {
  if (f.attrs['format']?.value !== CHECKPOINT_FORMAT) throw new Error('the format attribute did not read back');
  const groups: [string, Map<string, ArrayRecord>][] = [['weights', ck.weights]];
  if (ck.optimizer) groups.push(['optimizer/m', ck.optimizer.m], ['optimizer/v', ck.optimizer.v]);
  for (const [name, records] of groups) {
    const g = f.get(name);
    if (!(g instanceof h5wasm.Group)) throw new Error(`group ${name} did not read back`);
    const keys = g.keys();
    if (keys.length !== records.size)
      throw new Error(`group ${name} reads back ${keys.length} entries, wrote ${records.size}`);
    for (const [key, rec] of records) {
      const d = g.get(key);
      if (!(d instanceof h5wasm.Dataset)) throw new Error(`${name}/${key} did not read back`);
      if ((d.shape ?? []).join(',') !== rec.shape.join(','))
        throw new Error(`${name}/${key} reads back with another shape`);
    }
  }
}

function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { force: true });
  } catch {
    // best effort: the original error is what the user needs to see
  }
}

function closeQuietly(mod: Awaited<ReturnType<typeof h5module>>, f: H5File | null): void {
  if (!f) return;
  try {
    withH5Errors(mod, () => f.close());
  } catch {
    // the file is being abandoned anyway
  }
}

/**
 * Save a checkpoint atomically (temp file in the same directory, verify, fsync, rename). Throws a VslError
 * naming `path` and the cause on any failure, leaving any previous file at `path` as it was.
 */
export async function saveCheckpoint(path: string, ck: CheckpointData): Promise<void> {
  const dir = nodePath.dirname(nodePath.resolve(path));
  const tmp = tempNameFor(nodePath.join(dir, nodePath.basename(path)));
  const fail = (cause: string): VslError => {
    // Inner VslErrors already start with the path; say it once.
    const own = `${path}: `;
    return new VslError(`${path}: cannot save checkpoint: ${cause.startsWith(own) ? cause.slice(own.length) : cause}`);
  };

  // Arguments first: nothing is touched on disk if the caller passed something malformed. (Each weight record
  // is checked as it is written, in the same pass; a bad one aborts the write and removes the temp file.)
  try {
    if (!(ck.weights instanceof Map)) throw badInput(path, 'weights', 'a Map of arrays', typeof ck.weights);
    checkCount(path, 'epoch', ck.epoch);
    checkCount(path, 'iteration', ck.iteration);
    if (typeof ck.bestRsum !== 'number') throw badInput(path, 'bestRsum', 'a number', typeof ck.bestRsum);
    checkOptimizer(path, ck);
  } catch (e) {
    throw fail(describe(e));
  }

  // The directory must exist and be writable. Probe with Node first: its errors (ENOENT, ENOTDIR, EACCES,
  // EROFS) are clearer than HDF5's, and this also covers root, for whom permission bits do not apply.
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw fail(`directory ${dir} does not exist`);
    if (code === 'ENOTDIR') throw fail(`directory ${dir}: a component of that path is not a directory`);
    throw fail(`directory ${dir} is not accessible (${describe(e)})`);
  }
  if (!st.isDirectory()) throw fail(`${dir} is not a directory`);
  if (fs.existsSync(path) && fs.statSync(path).isDirectory()) throw fail('the path is a directory');
  try {
    fs.closeSync(fs.openSync(tmp, 'w'));
  } catch (e) {
    removeQuietly(tmp);
    throw fail(`directory ${dir} is not writable (${(e as Error).message})`);
  }

  const mod = await h5module();
  await h5();
  let f: H5File | null = null;
  try {
    f = await createH5(tmp);
    const file = f;
    withH5Errors(mod, () => {
      writeCheckpointFile(file, path, ck);
      file.flush();
    });
    const status = withH5Errors(mod, () => file.close());
    f = null;
    if (status < 0) throw new Error('closing the file failed');
    await readH5(tmp, (r) => verifyWritten(r.file, ck));

    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
  } catch (e) {
    closeQuietly(mod, f);
    removeQuietly(tmp);
    throw fail(describe(e));
  }
  // Make the rename itself durable; some filesystems refuse fsync on a directory, which is harmless here.
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // durability of the directory entry is best effort
  }
}

function readRecords(r: H5Reader, groupPath: string): Map<string, ArrayRecord> {
  const g = r.get(groupPath);
  if (!(g instanceof h5wasm.Group)) {
    const found = g === null ? 'nothing of that name' : `a ${(g as { type?: string }).type ?? 'non-group'}`;
    throw badInput(r.path, groupPath, 'a group of float32/int64 datasets', found);
  }
  const out = new Map<string, ArrayRecord>();
  for (const key of r.at(`${groupPath}/`, () => g.keys())) {
    const name = `${groupPath}/${key}`;
    out.set(
      key,
      r.at(name, () => readNumeric(g.get(key), r.path, name)),
    );
  }
  return out;
}

function readJsonAttr(r: H5Reader, name: string, required: boolean): Record<string, unknown> | undefined {
  const v = r.attr(name);
  const field = `attribute ${name}`;
  if (v === undefined) {
    if (required) throw badInput(r.path, field, 'a JSON string', 'no such attribute');
    return undefined;
  }
  if (typeof v !== 'string') throw badInput(r.path, field, 'a JSON string', `a ${typeof v}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    throw badInput(r.path, field, 'valid JSON', `invalid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badInput(r.path, field, 'a JSON object', Array.isArray(parsed) ? 'an array' : String(parsed));
  }
  return parsed as Record<string, unknown>;
}

function readNumberAttr(r: H5Reader, name: string, integer: boolean): number {
  const v = r.attr(name);
  const field = `attribute ${name}`;
  const expected = integer ? 'an integer' : 'a number';
  if (v === undefined) throw badInput(r.path, field, expected, 'no such attribute');
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || (integer && !Number.isSafeInteger(n)))
    throw badInput(r.path, field, expected, `${typeof v} ${anyToString(v)}`);
  return n;
}

/** Load a checkpoint written by saveCheckpoint; VslErrors name the file and the field that is wrong. */
export async function loadCheckpoint(path: string): Promise<CheckpointData> {
  return readH5(path, (r) => {
    const fmt = r.attr('format');
    if (fmt === undefined) {
      const hint = r.attr('opt_json') !== undefined ? ' (a reference/golden file? read it with loadWeightsGroup)' : '';
      throw badInput(
        path,
        'attribute format',
        `"${CHECKPOINT_FORMAT}" (a vsl checkpoint)`,
        `no format attribute${hint}`,
      );
    }
    if (fmt !== CHECKPOINT_FORMAT)
      throw badInput(path, 'attribute format', `"${CHECKPOINT_FORMAT}"`, JSON.stringify(fmt));
    const ck: CheckpointData = {
      weights: readRecords(r, 'weights'),
      options: readJsonAttr(r, 'options_json', true)!,
      epoch: readNumberAttr(r, 'epoch', true),
      iteration: readNumberAttr(r, 'iteration', true),
      bestRsum: readNumberAttr(r, 'best_rsum', false),
    };
    if (r.get('optimizer') !== null) {
      ck.optimizer = {
        step: readNumberAttr(r, 'optimizer_step', true),
        m: readRecords(r, 'optimizer/m'),
        v: readRecords(r, 'optimizer/v'),
      };
    }
    const dataOrder = readJsonAttr(r, 'data_order_json', false);
    if (dataOrder !== undefined) ck.dataOrder = dataOrder;
    const extra = readJsonAttr(r, 'extra_json', false);
    if (extra !== undefined) ck.extra = extra;
    return ck;
  });
}

/**
 * Read every float32/int64 dataset of one group (default `weights`) into a map by key. Works on vsl
 * checkpoints and on the golden reference files (`weights/<state_dict key>`, options in `opt_json`).
 */
export async function loadWeightsGroup(path: string, group = 'weights'): Promise<Map<string, ArrayRecord>> {
  return readH5(path, (r) => readRecords(r, group));
}
