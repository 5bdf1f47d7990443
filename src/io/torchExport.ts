// A SGRAF/VSL checkpoint as the reference's train.py saves it: torch.save's zip container holding
// the pickle of {epoch, model: [img_enc, txt_enc, sim_enc state_dicts], best_rsum, opt: argparse.Namespace,
// Eiters}. Tensors are float32 (num_batches_tracked int64, 0-d), each on a storage of its own
// (`archive/data/<n>`, 64-byte aligned); the pickle names only OrderedDict, Namespace, torch's tensor rebuild
// function and storage types: plain data, as the reference's own checkpoints.
import fs from 'node:fs';
import nodePath from 'node:path';
import { VslError } from '../util/errors.js';
import { tempNameFor } from '../util/atomicFile.js';
import { pickle, py, type PyValue } from './pickleWrite.js';
import { storedZip, type ZipEntry } from './zipWrite.js';

/** One tensor of a state dict: row-major data and its shape ([] for a 0-d tensor). */
export interface ExportTensor {
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export interface ReferenceCheckpoint {
  /** the three state dicts, keys without their img_enc. / txt_enc. / sim_enc. prefix */
  model: [Map<string, ExportTensor>, Map<string, ExportTensor>, Map<string, ExportTensor>];
  /** the argparse options, already as Python values */
  opt: Map<string, PyValue>;
  epoch: number;
  eiters: number;
  bestRsum: number;
}

const ARCHIVE = 'archive';

function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let n = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = n;
    n *= shape[d];
  }
  return s;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of a torch.save zip file holding `ck`. */
function torchCheckpointBytes(ck: ReferenceCheckpoint): Uint8Array {
  // storages are the typed arrays' bytes, and torch's byteorder entry says little
  if (!LITTLE_ENDIAN_HOST) throw new VslError('writing torch files needs a little-endian host');
  const storages: ZipEntry[] = [];
  const tensor = (t: ExportTensor): PyValue => {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== numel)
      throw new Error(`tensor of shape [${t.shape.join(',')}] has ${t.data.length} elements`);
    const key = String(storages.length);
    const type = t.data instanceof BigInt64Array ? 'LongStorage' : 'FloatStorage';
    storages.push({
      name: `${ARCHIVE}/data/${key}`,
      data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    });
    const storage = py.persistent(py.tuple('storage', py.global('torch', type), key, 'cpu', py.int(numel)));
    return py.call(py.global('torch._utils', '_rebuild_tensor_v2'), [
      storage,
      py.int(0),
      py.tuple(...t.shape.map((d) => py.int(d))),
      py.tuple(...contiguousStrides(t.shape).map((d) => py.int(d))),
      false,
      py.orderedDict([]),
    ]);
  };
  const model = ck.model.map((sd) => py.orderedDict([...sd].map(([k, t]) => [k, tensor(t)] as const)));
  const top = new Map<string, PyValue>([
    ['epoch', py.int(ck.epoch)],
    ['model', model],
    ['best_rsum', py.float(ck.bestRsum)],
    ['opt', py.instance(py.global('argparse', 'Namespace'), ck.opt)],
    ['Eiters', py.int(ck.eiters)],
  ]);
  const text = (s: string) => new TextEncoder().encode(s);
  return storedZip([
    { name: `${ARCHIVE}/data.pkl`, data: pickle(top) },
    { name: `${ARCHIVE}/byteorder`, data: text('little') },
    ...storages,
    { name: `${ARCHIVE}/version`, data: text('3\n') },
  ]);
}

/**
 * Write `ck` to `path` through a temporary file in the same directory; `check` reads the temporary file back
 * before it is renamed onto `path`. On failure the temporary file is removed and `path` is left as it was.
 */
export async function writeTorchCheckpoint(
  path: string,
  ck: ReferenceCheckpoint,
  check: (tmp: string) => Promise<void>,
): Promise<void> {
  const dir = nodePath.dirname(nodePath.resolve(path));
  const tmp = tempNameFor(nodePath.join(dir, nodePath.basename(path)));
  try {
    if (fs.existsSync(path) && fs.statSync(path).isDirectory()) throw new Error('the path is a directory');
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, torchCheckpointBytes(ck));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    await check(tmp);
    fs.renameSync(tmp, path);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    const cause = e instanceof VslError ? e.message : (e as Error).message;
    throw new VslError(`${path}: cannot write the checkpoint: ${cause}`);
  }
}
