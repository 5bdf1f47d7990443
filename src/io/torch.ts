// Reader for PyTorch `torch.save` files (SGRAF / VSL `*.pth.tar` checkpoints), with no Python.
//
// Two containers exist:
//  - zip (torch >= 1.6): `<prefix>/data.pkl` (the pickle), `<prefix>/data/<key>` (one raw little-endian storage per
//    key), `<prefix>/version`; persistent ids are ('storage', storage_type, key, location, numel). `<prefix>` is the
//    file's base name without its last extension in torch 1.x (`model_best.pth` for `model_best.pth.tar`) and
//    `archive` in torch 2.x.
//  - legacy (torch <= 1.5, or `_use_new_zipfile_serialization=False`): five pickles in a row (magic number,
//    protocol version 1001, sys_info, the object with persistent ids ('storage', storage_type, root_key, location,
//    numel, view_metadata), the list of storage keys), then for each key an int64 element count and the raw bytes.
//
// The pickles go through the allow-list unpickler of pickle.ts: only the globals in TORCH_ALLOWED_GLOBALS resolve.
// Tensors are built by torchTensor.ts, the pickle's globals resolved by torchGlobals.ts, the archive read by zip.ts.
import { readFile } from 'node:fs/promises';
import { anyToString, badInput, fileError, VslError } from '../util/errors.js';
import { LITTLE_ENDIAN_HOST } from './binary.js';
import { isTuple, unpickle, type AllowList } from './pickle.js';
import { asInt, makeAllowList, type LoadContext } from './torchGlobals.js';
import { StorageType, type Storage } from './torchTensor.js';
import { readZip } from './zip.js';

function describeBytes(b: Uint8Array): string {
  const head = b.subarray(0, 8);
  const hex = [...head].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  const text = [...head].map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
  const start = new TextDecoder('latin1').decode(b.subarray(0, 64)).trimStart().toLowerCase();
  let guess = '';
  if (head[0] === 0x89 && text.startsWith('.HDF')) guess = ': an HDF5 file';
  else if (head[0] === 0x1f && head[1] === 0x8b) guess = ': a gzip file';
  else if (head[0] === 0x93 && text.startsWith('.NUMPY')) guess = ': a numpy .npy file';
  else if (start.startsWith('<!doctype html') || start.startsWith('<html'))
    guess = ': an HTML page (a failed download?)';
  else if (b.byteLength > 262 && new TextDecoder('latin1').decode(b.subarray(257, 262)) === 'ustar')
    guess = ': a tar archive (the torch <= 0.3 container, not supported)';
  else if (start.startsWith('{') || start.startsWith('[')) guess = ': JSON text';
  return `${b.byteLength === 0 ? 'an empty file' : `bytes ${hex} ("${text}")`}${guess}`;
}

function asStoragePid(pid: unknown, arity: number, file: string): readonly unknown[] {
  if (!isTuple(pid) || pid[0] !== 'storage' || pid.length !== arity || !(pid[1] instanceof StorageType))
    throw badInput(
      file,
      'persistent id',
      `('storage', <torch storage type>, key, location, numel${arity === 6 ? ', view' : ''})`,
      `${Array.isArray(pid) ? `a tuple of ${pid.length} starting ${String(pid[0])}` : typeof pid}`,
    );
  return pid;
}

function pidKey(v: unknown, file: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw badInput(file, 'storage key', 'a string or an integer', v === null || v === undefined ? 'None' : typeof v);
}

function loadZip(bytes: Uint8Array, file: string): { value: unknown; version?: string } {
  const entries = readZip(bytes, file);
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1)
    throw badInput(
      file,
      'zip entries',
      'one <archive>/data.pkl (a torch.save zip)',
      pkls.length ? pkls.join(', ') : `${[...entries.keys()].slice(0, 5).join(', ') || 'no entries'}`,
    );
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const text = (n: string): string | undefined => {
    const e = entries.get(prefix + n);
    return e ? new TextDecoder().decode(e.data).trim() : undefined;
  };
  const byteorder = text('byteorder');
  if (byteorder !== undefined && byteorder !== 'little')
    throw badInput(file, `${prefix}byteorder`, 'little', byteorder);
  const ctx: LoadContext = { file, tensors: [] };
  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    const t = asStoragePid(pid, 5, file);
    const key = pidKey(t[2], file);
    const type = t[1] as StorageType;
    const numel = asInt(t[4], 'storage numel');
    let s = storages.get(key);
    if (s) return s;
    const entry = entries.get(`${prefix}data/${key}`);
    if (!entry)
      throw badInput(
        file,
        `${prefix}data/${key}`,
        'a storage entry in the archive',
        'none (truncated or incomplete archive)',
      );
    if (entry.data.byteLength < numel * type.itemsize)
      throw badInput(
        file,
        `${prefix}data/${key}`,
        `${numel * type.itemsize} bytes (${numel} × ${type.torchDtype})`,
        `${entry.data.byteLength} bytes (truncated storage)`,
      );
    s = { key, type, numel, bytes: entry.data, offset: 0 };
    storages.set(key, s);
    return s;
  };
  const { value } = unpickle(entries.get(pkls[0])!.data, {
    allow: makeAllowList(ctx),
    persistentLoad,
    file: `${file}:${pkls[0]}`,
  });
  for (const t of ctx.tensors) t.materialize(file);
  return { value, version: text('version') ?? text('.data/version') };
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

function loadLegacy(bytes: Uint8Array, file: string): { value: unknown } {
  const none: AllowList = new Map();
  let magic: unknown;
  let pos: number;
  try {
    ({ value: magic, end: pos } = unpickle(bytes, { allow: none, file }));
  } catch (e) {
    throw badInput(
      file,
      'file header',
      'a zip archive (torch >= 1.6) or the legacy torch magic number pickle',
      `${describeBytes(bytes)} (${(e as Error).message})`,
    );
  }
  if (magic !== LEGACY_MAGIC)
    throw badInput(
      file,
      'legacy torch magic number',
      '0x1950a86a20f9469cfc6c',
      `${typeof magic === 'bigint' || typeof magic === 'number' ? '0x' + magic.toString(16) : typeof magic} (${describeBytes(bytes)})`,
    );
  let r = unpickle(bytes, { allow: none, file }, pos);
  if (r.value !== 1001) throw badInput(file, 'legacy torch protocol version', '1001', String(r.value));
  r = unpickle(bytes, { allow: none, file }, r.end);
  const sys = r.value;
  if (sys instanceof Map && sys.get('little_endian') === false)
    throw badInput(file, 'sys_info.little_endian', 'true', 'false (big-endian checkpoints are not supported)');

  const ctx: LoadContext = { file, tensors: [] };
  const roots = new Map<string, Storage>();
  const views = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    const t = asStoragePid(pid, 6, file);
    const type = t[1] as StorageType;
    const key = pidKey(t[2], file);
    const numel = asInt(t[4], 'storage numel');
    let root = roots.get(key);
    if (!root) roots.set(key, (root = { key, type, numel, offset: 0 }));
    const view = t[5];
    if (view === null || view === undefined) return root;
    if (!isTuple(view) || view.length !== 3)
      throw badInput(file, `storage ${key} view`, '(view_key, offset, size)', anyToString(view));
    const vkey = pidKey(view[0], file);
    let v = views.get(vkey);
    if (!v)
      views.set(
        vkey,
        (v = { key: vkey, type, numel: asInt(view[2], 'view size'), root, offset: asInt(view[1], 'view offset') }),
      );
    return v;
  };
  r = unpickle(bytes, { allow: makeAllowList(ctx), persistentLoad, file }, r.end);
  const value = r.value;
  r = unpickle(bytes, { allow: none, file }, r.end);
  const keys = r.value;
  if (!Array.isArray(keys)) throw badInput(file, 'legacy storage key list', 'a list of keys', typeof keys);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = r.end;
  for (const k of keys) {
    const key = pidKey(k, file);
    const s = roots.get(key);
    if (!s) throw badInput(file, `storage ${key}`, 'a storage the object refers to', 'an unreferenced key');
    if (pos + 8 > bytes.byteLength)
      throw badInput(
        file,
        `storage ${key}`,
        'an int64 element count',
        `${bytes.byteLength - pos} bytes left (truncated storage)`,
      );
    const n = Number(dv.getBigInt64(pos, true));
    const nbytes = n * s.type.itemsize;
    pos += 8;
    if (n < 0 || pos + nbytes > bytes.byteLength)
      throw badInput(
        file,
        `storage ${key}`,
        `${nbytes} bytes (${n} × ${s.type.torchDtype})`,
        `${bytes.byteLength - pos} bytes left in the file (truncated storage)`,
      );
    if (n < s.numel) throw badInput(file, `storage ${key}`, `${s.numel} elements`, `${n} (truncated storage)`);
    s.bytes = bytes.subarray(pos, pos + nbytes);
    pos += nbytes;
  }
  // the container ends with the last storage (torch writes nothing after it): more bytes mean damage
  if (pos !== bytes.byteLength)
    throw badInput(
      file,
      'end of file',
      `the end right after the last storage (byte ${pos})`,
      `${bytes.byteLength - pos} more bytes (bytes inserted or appended)`,
    );
  for (const t of ctx.tensors) t.materialize(file);
  return { value };
}

/** The unpickled content of a torch.save file, tensors rebuilt. */
export interface TorchFile {
  value: unknown;
  format: 'zip' | 'legacy';
  /** `<archive>/version` of a zip container. */
  version?: string;
}

/** Decode a torch.save file already in memory (`file` names it in errors). */
export function loadTorch(bytes: Uint8Array, file: string): TorchFile {
  if (!LITTLE_ENDIAN_HOST) throw new VslError(`${file}: reading torch files needs a little-endian host`);
  if (bytes.byteLength >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04)
    return { ...loadZip(bytes, file), format: 'zip' };
  if (bytes.byteLength >= 2 && bytes[0] === 0x80 && bytes[1] <= 5)
    return { ...loadLegacy(bytes, file), format: 'legacy' };
  throw badInput(
    file,
    'file header',
    'a torch checkpoint (zip archive "PK\\x03\\x04" or legacy pickle "\\x80\\x02")',
    describeBytes(bytes),
  );
}

/** Read and decode a torch.save file. */
export async function readTorchFile(path: string): Promise<TorchFile> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fileError(path, e);
  }
  return loadTorch(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}
