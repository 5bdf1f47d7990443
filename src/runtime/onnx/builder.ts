// A small ONNX graph builder, so that the graph code (encoderGraphs.ts, similarityGraph.ts, reasoningGraph.ts)
// reads like the model's tfjs code: `b.op('Gemm', [x, w, bias], { transB: int(1) })` returns the name of the
// result, weights become initializers, and `b.bytes()` serialises a ModelProto (opset 17, IR 8) with onnx-buf's
// generated schema of onnx.proto and @bufbuild/protobuf's encoder. Value and node names carry the block they belong
// to (`visualSA/Gemm_3`), which is what an ORT error or a profile names.
import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType as AttrType,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProtoSchema,
  TensorProto_DataType as DataType,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';

export const OPSET = 17;
/** IR version 8 is the one that came with opset 17 (ONNX 1.12). */
const IR_VERSION = 8;

export type ElemType = 'float32' | 'int32' | 'int64' | 'bool';
/** A dimension: a fixed size, or the name of a dynamic one ('nImg'). */
export type Dim = number | string;
/** The name of a value in the graph (an input, an initializer or a node's output). */
export type Value = string;

/** TensorProto.DataType of each element type (Cast's `to`). */
export const DATA_TYPE: Record<ElemType, number> = {
  float32: DataType.FLOAT,
  int32: DataType.INT32,
  int64: DataType.INT64,
  bool: DataType.BOOL,
};

/** Attribute values, tagged with their ONNX type. */
export type Attr =
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'ints'; v: number[] }
  | { kind: 'string'; v: string };
export const int = (v: number): Attr => ({ kind: 'int', v });
export const float = (v: number): Attr => ({ kind: 'float', v });
export const ints = (v: number[]): Attr => ({ kind: 'ints', v });
export const str = (v: string): Attr => ({ kind: 'string', v });

function attribute(name: string, a: Attr): AttributeProto {
  switch (a.kind) {
    case 'int':
      return create(AttributeProtoSchema, { name, type: AttrType.INT, i: BigInt(a.v) });
    case 'float':
      return create(AttributeProtoSchema, { name, type: AttrType.FLOAT, f: a.v });
    case 'ints':
      return create(AttributeProtoSchema, { name, type: AttrType.INTS, ints: a.v.map((x) => BigInt(x)) });
    case 'string':
      return create(AttributeProtoSchema, { name, type: AttrType.STRING, s: new TextEncoder().encode(a.v) });
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[] | null): ValueInfoProto {
  if (dims === null) {
    const unshaped = create(TypeProto_TensorSchema, { elemType: DATA_TYPE[type] });
    return create(ValueInfoProtoSchema, {
      name,
      type: create(TypeProtoSchema, { value: { case: 'tensorType', value: unshaped } }),
    });
  }
  const dim = dims.map((d) =>
    create(TensorShapeProto_DimensionSchema, {
      value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
    }),
  );
  const tensorType = create(TypeProto_TensorSchema, {
    elemType: DATA_TYPE[type],
    shape: create(TensorShapeProtoSchema, { dim }),
  });
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: tensorType } }),
  });
}

type HostData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

function tensorOf(name: string, data: HostData, dims: number[], type: ElemType): TensorProto {
  const size = dims.reduce((a, b) => a * b, 1);
  if (size !== data.length) throw new Error(`initializer ${name}: ${data.length} values for shape [${dims.join(',')}]`);
  // raw_data is little-endian, as typed arrays are on every platform Node runs on
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return create(TensorProtoSchema, { name, dims: dims.map((d) => BigInt(d)), dataType: DATA_TYPE[type], rawData: raw });
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly inits: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly scopes: string[] = [];
  private readonly constCache = new Map<string, Value>();
  private readonly initNames = new Set<string>();
  private count = 0;

  constructor(readonly name: string) {}

  /** Run `fn` with node and value names prefixed by `block/`. */
  scope<T>(block: string, fn: () => T): T {
    this.scopes.push(block);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  private fresh(what: string): string {
    const prefix = this.scopes.length ? `${this.scopes.join('/')}/` : '';
    return `${prefix}${what}_${this.count++}`;
  }

  input(name: string, type: ElemType, dims: Dim[]): Value {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /**
   * Declare `value` as a graph output (it must have been made under that name: see `op`'s `outName`); dims null:
   * of any shape.
   */
  output(name: Value, type: ElemType, dims: Dim[] | null): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A named initializer (a weight); a second call with the same name returns the first one's. */
  init(name: string, data: HostData, dims: number[], type: ElemType = 'float32'): Value {
    if (this.initNames.has(name)) return name;
    this.initNames.add(name);
    this.inits.push(tensorOf(name, data, dims, type));
    return name;
  }

  /** A small constant, shared between uses of the same values. */
  constant(values: ArrayLike<number>, dims: number[], type: ElemType = 'float32'): Value {
    const key = `${type}:${dims.join(',')}:${Array.from(values).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const data =
      type === 'int64'
        ? BigInt64Array.from(Array.from(values), (v) => BigInt(v))
        : type === 'int32'
          ? Int32Array.from(values)
          : type === 'bool'
            ? Uint8Array.from(values)
            : Float32Array.from(values);
    const name = `const_${this.count++}`;
    this.inits.push(tensorOf(name, data, dims, type));
    this.constCache.set(key, name);
    return name;
  }

  /** A float32 scalar (0-d) constant. */
  scalar(v: number): Value {
    return this.constant([v], []);
  }

  /** An int64 1-D constant (shapes, axes, starts). */
  i64(values: number[]): Value {
    return this.constant(values, [values.length], 'int64');
  }

  /** One node with one output; returns the output's name (`outName`, or a fresh one). */
  op(opType: string, inputs: Value[], attrs: Record<string, Attr> = {}, outName?: string): Value {
    return this.opN(opType, inputs, 1, attrs, outName ? [outName] : undefined)[0];
  }

  /** One node with `nOut` outputs. */
  opN(opType: string, inputs: Value[], nOut: number, attrs: Record<string, Attr> = {}, outNames?: string[]): Value[] {
    const nodeName = this.fresh(opType);
    const output = outNames ?? Array.from({ length: nOut }, (_, i) => (nOut === 1 ? nodeName : `${nodeName}:${i}`));
    this.nodes.push(
      create(NodeProtoSchema, {
        name: nodeName,
        opType,
        input: inputs,
        output,
        attribute: Object.entries(attrs).map(([k, a]) => attribute(k, a)),
      }),
    );
    return output;
  }

  /**
   * Give the value `from` (a node's output) the name `to`, in its node and in every node that reads it: how a
   * block's result becomes a graph output without an Identity (which ORT runs as a copy).
   */
  rename(from: Value, to: string): Value {
    for (const n of this.nodes) {
      n.output = n.output.map((o) => (o === from ? to : o));
      n.input = n.input.map((i) => (i === from ? to : i));
    }
    return to;
  }

  /** The serialised ModelProto. */
  bytes(docString = ''): Uint8Array {
    const graph = create(GraphProtoSchema, {
      name: this.name,
      node: this.nodes,
      initializer: this.inits,
      input: this.inputs,
      output: this.outputs,
    });
    const model = create(ModelProtoSchema, {
      irVersion: BigInt(IR_VERSION),
      producerName: 'vsl',
      docString,
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(OPSET) })],
      graph,
    });
    return toBinary(ModelProtoSchema, model);
  }
}
