// `vsl export --format onnx`: a model's three graphs written to a folder with manifest.json, which describes
// them for a program that is not vsl (ONNX Runtime from Python or C++): each graph's inputs and outputs with
// names, element types and shapes (dynamic dimensions by name), read back from the graph bytes themselves, and
// what they were made from (the caller's `about`: checkpoint hash, model config, vocabulary, vsl version).
// The folder appears whole or not at all: everything is written into a temporary folder beside it, which is
// renamed into place (a previous export in that place is replaced only once the new one is complete).
import fs from 'node:fs';
import path from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType as DataType, type ValueInfoProto } from 'onnx-buf';
import { VslError } from '../../util/errors.js';
import { fsyncDir, mkdirs, tempNameFor, writeFileDurable } from '../../util/atomicFile.js';
import { OPSET } from './builder.js';
import type { GraphName, OnnxGraphs } from './graphs.js';

const MANIFEST = 'manifest.json';
const EXPORT_FORMAT = 'vsl-onnx-export';

interface TensorSignature {
  name: string;
  dtype: string;
  /** sizes, or the names of dynamic dimensions ('nImg', 'nCap', 'Lp') */
  shape: (number | string)[];
}

interface GraphSignature {
  file: string;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

const DTYPES: Partial<Record<number, string>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.BOOL]: 'bool',
};

function tensorOf(v: ValueInfoProto): TensorSignature {
  const t = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  const dims = t?.shape?.dim ?? [];
  return {
    name: v.name,
    dtype: DTYPES[t?.elemType ?? -1] ?? `onnx type ${t?.elemType}`,
    shape: dims.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : (d.value.value ?? '?'))),
  };
}

/** A graph's inputs and outputs as its bytes declare them. */
function graphSignature(bytes: Uint8Array, file: string): GraphSignature {
  const g = fromBinary(ModelProtoSchema, bytes).graph;
  const inits = new Set(g?.initializer.map((t) => t.name));
  return {
    file,
    inputs: (g?.input ?? []).filter((v) => !inits.has(v.name)).map(tensorOf),
    outputs: (g?.output ?? []).map(tensorOf),
  };
}

/** Write `graphs`, manifest.json (with `about` merged in) and `extra` files to `dir`, whole or not at all. */
export function writeOnnxExport(
  dir: string,
  graphs: OnnxGraphs,
  about: Record<string, unknown>,
  extra: Record<string, Uint8Array> = {},
): string[] {
  const names: GraphName[] = ['image', 'caption', 'score'];
  const target = path.resolve(dir);
  if (fs.existsSync(target) && !fs.existsSync(path.join(target, MANIFEST)) && fs.readdirSync(target).length > 0)
    throw new VslError(`${dir}: exists and is not a vsl ONNX export: choose another -o, or remove it`);
  mkdirs(path.dirname(target));
  const tmp = tempNameFor(target);
  const files = [...names.map((n) => `${n}.onnx`), MANIFEST, ...Object.keys(extra)];
  try {
    fs.mkdirSync(tmp);
    const manifest = {
      format: EXPORT_FORMAT,
      version: 1,
      opset: OPSET,
      ...about,
      graphs: Object.fromEntries(names.map((n) => [n, graphSignature(graphs[n], `${n}.onnx`)])),
    };
    for (const n of names) writeFileDurable(path.join(tmp, `${n}.onnx`), [graphs[n]]);
    for (const [f, bytes] of Object.entries(extra)) writeFileDurable(path.join(tmp, f), [bytes]);
    writeFileDurable(path.join(tmp, MANIFEST), [new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n')]);
    fsyncDir(tmp);
    const old = fs.existsSync(target) ? tempNameFor(target) : null;
    if (old) fs.renameSync(target, old);
    fs.renameSync(tmp, target);
    if (old) fs.rmSync(old, { recursive: true, force: true });
    fsyncDir(path.dirname(target));
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof VslError) throw e;
    throw new VslError(`${dir}: cannot write the ONNX export (${(e as Error).message.split('\n')[0]})`);
  }
  return files.map((f) => path.join(dir, f));
}
