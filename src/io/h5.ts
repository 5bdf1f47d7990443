// Thin helpers over h5wasm (ESM-only; `h5wasm/node` reads and writes the real filesystem).
import h5wasm from 'h5wasm/node';
import { badInput, VslError } from '../util/errors.js';

export type H5Data = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | string[];

/** One array as read from HDF5: row-major data plus its shape ([] for a scalar). */
export interface NamedArray {
  shape: number[];
  data: H5Data;
}

let ready: Promise<unknown> | null = null;
export async function h5(): Promise<typeof h5wasm> {
  ready ??= h5wasm.ready;
  await ready;
  return h5wasm;
}

/** Open an HDF5 file for reading, with a clear error when it is missing or not HDF5. */
export async function openH5(path: string): Promise<InstanceType<typeof h5wasm.File>> {
  const lib = await h5();
  const fs = await import('node:fs');
  if (!fs.existsSync(path)) throw new VslError(`${path}: file not found`);
  try {
    return new lib.File(path, 'r');
  } catch (e) {
    throw badInput(path, 'file', 'an HDF5 file', `unreadable (${(e as Error).message})`);
  }
}

function toTyped(value: unknown, path: string, name: string): H5Data {
  if (value instanceof Float32Array || value instanceof Float64Array || value instanceof Int32Array) return value;
  if (value instanceof BigInt64Array || value instanceof Uint8Array) return value;
  if (typeof value === 'number') return new Float64Array([value]);
  if (typeof value === 'bigint') return new BigInt64Array([value]);
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw badInput(path, name, 'a float, integer or string dataset', `an unsupported value (${typeof value})`);
}

/** Read every dataset directly below `group` (or the whole file when group is '') into a map by name. */
export async function readGroup(path: string, group: string): Promise<Map<string, NamedArray>> {
  const f = await openH5(path);
  try {
    const g = group ? f.get(group) : f;
    const lib = await h5();
    if (!(g instanceof lib.Group)) throw badInput(path, group, 'an HDF5 group', 'nothing of that name');
    const out = new Map<string, NamedArray>();
    for (const k of g.keys()) {
      const d = g.get(k);
      if (d instanceof lib.Dataset) out.set(k, { shape: d.shape ?? [], data: toTyped(d.value, path, `${group}/${k}`) });
    }
    return out;
  } finally {
    f.close();
  }
}

/** A file-level attribute as a string (e.g. JSON of options), or undefined when absent. */
export async function readStringAttr(path: string, name: string): Promise<string | undefined> {
  const f = await openH5(path);
  try {
    const a = f.attrs[name];
    if (a === undefined) return undefined;
    return String(a.value);
  } finally {
    f.close();
  }
}
