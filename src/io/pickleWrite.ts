// A pickle writer for plain data, protocol 2 (what torch.save writes). Values are built with the `py` helpers
// below, so that every Python type is explicit (an int is not a float, a tuple is not a list). The only globals
// it can name are the ones a caller passes in a `PyGlobal` (for a checkpoint: collections.OrderedDict,
// argparse.Namespace, torch's tensor rebuild function and storage types), and no memo is written: the pickle
// is a tree that any unpickler (Python's, or vsl's allow-list one in pickle.ts) reads without running code.

/** A Python int (any size). */
export class PyInt {
  constructor(readonly value: bigint) {}
}
/** A Python float (IEEE double). */
export class PyFloat {
  constructor(readonly value: number) {}
}
export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}
/** A module-level Python name, e.g. `collections.OrderedDict`. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
/** `callable(*args)` (the REDUCE opcode), e.g. OrderedDict() or torch._utils._rebuild_tensor_v2(...). */
export class PyCall {
  constructor(
    readonly callable: PyGlobal,
    readonly args: PyTuple,
    /** key/value pairs set on the result (an OrderedDict's items), in order */
    readonly items?: readonly (readonly [PyValue, PyValue])[],
  ) {}
}
/** An instance `cls.__new__(cls)` whose `__dict__` becomes `state` (NEWOBJ + BUILD), e.g. argparse.Namespace. */
export class PyInstance {
  constructor(
    readonly cls: PyGlobal,
    readonly state: ReadonlyMap<string, PyValue>,
  ) {}
}
/** A persistent id (BINPERSID): the unpickler's persistent_load resolves it (torch: a storage). */
export class PyPersistent {
  constructor(readonly id: PyValue) {}
}

/** str, bool, None, list (Array), dict (Map with string keys), or one of the classes above. */
export type PyValue =
  | null
  | boolean
  | string
  | PyInt
  | PyFloat
  | PyTuple
  | PyValue[]
  | ReadonlyMap<string, PyValue>
  | PyGlobal
  | PyCall
  | PyInstance
  | PyPersistent;

export const py = {
  int: (v: number | bigint): PyInt => {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new Error(`py.int: expected an integer, found ${v}`);
    return new PyInt(BigInt(v));
  },
  float: (v: number): PyFloat => new PyFloat(v),
  tuple: (...items: PyValue[]): PyTuple => new PyTuple(items),
  global: (module: string, name: string): PyGlobal => new PyGlobal(module, name),
  call: (f: PyGlobal, args: PyValue[], items?: (readonly [PyValue, PyValue])[]): PyCall =>
    new PyCall(f, new PyTuple(args), items),
  instance: (cls: PyGlobal, state: ReadonlyMap<string, PyValue>): PyInstance => new PyInstance(cls, state),
  persistent: (id: PyValue): PyPersistent => new PyPersistent(id),
  /** collections.OrderedDict with these items, pickled as Python pickles it (OrderedDict() then SETITEMS). */
  orderedDict: (items: Iterable<readonly [string, PyValue]>): PyCall =>
    new PyCall(new PyGlobal('collections', 'OrderedDict'), new PyTuple([]), [...items]),
};

const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  MARK: 0x28,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_LIST: 0x5d,
  APPENDS: 0x65,
  EMPTY_DICT: 0x7d,
  SETITEMS: 0x75,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  NEWOBJ: 0x81,
  BUILD: 0x62,
  BINPERSID: 0x51,
} as const;

/** Items per APPENDS / SETITEMS, as CPython batches them. */
const BATCH = 1000;

class Out {
  private buf = new Uint8Array(1024);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  u32(v: number): void {
    this.room(4);
    new DataView(this.buf.buffer).setUint32(this.length, v, true);
    this.length += 4;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const utf8 = new TextEncoder();

/** Two's complement little-endian bytes of n, as Python's encode_long (LONG1). */
function longBytes(n: bigint): Uint8Array {
  if (n === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let v = n;
  while (true) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
    const sign = out[out.length - 1] & 0x80;
    if ((v === 0n && !sign) || (v === -1n && sign)) break;
  }
  return Uint8Array.from(out);
}

/** The smallest of CPython's int opcodes: BININT1, BININT2, BININT, then LONG1. */
function writeInt(o: Out, n: bigint): void {
  if (n >= 0n && n < 256n) {
    o.byte(OP.BININT1);
    o.byte(Number(n));
  } else if (n >= 0n && n < 65536n) {
    o.byte(OP.BININT2);
    o.byte(Number(n) & 0xff);
    o.byte(Number(n) >> 8);
  } else if (n >= -(2n ** 31n) && n < 2n ** 31n) {
    o.byte(OP.BININT);
    o.u32(Number(BigInt.asUintN(32, n)));
  } else {
    const b = longBytes(n);
    if (b.length > 255) throw new Error(`pickle: an int of ${b.length} bytes is too large`);
    o.byte(OP.LONG1);
    o.byte(b.length);
    o.bytes(b);
  }
}

function writeValue(o: Out, v: PyValue): void {
  if (v === null) return o.byte(OP.NONE);
  if (v === true) return o.byte(OP.NEWTRUE);
  if (v === false) return o.byte(OP.NEWFALSE);
  if (typeof v === 'string') {
    const b = utf8.encode(v);
    o.byte(OP.BINUNICODE);
    o.u32(b.length);
    return o.bytes(b);
  }
  if (v instanceof PyInt) return writeInt(o, v.value);
  if (v instanceof PyFloat) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v.value, false); // big-endian, as BINFLOAT is
    o.byte(OP.BINFLOAT);
    return o.bytes(b);
  }
  if (v instanceof PyTuple) {
    const n = v.items.length;
    if (n === 0) return o.byte(OP.EMPTY_TUPLE);
    if (n > 3) o.byte(OP.MARK);
    for (const x of v.items) writeValue(o, x);
    return o.byte(n === 1 ? OP.TUPLE1 : n === 2 ? OP.TUPLE2 : n === 3 ? OP.TUPLE3 : OP.TUPLE);
  }
  if (Array.isArray(v)) {
    o.byte(OP.EMPTY_LIST);
    for (let i = 0; i < v.length; i += BATCH) {
      o.byte(OP.MARK);
      for (const x of v.slice(i, i + BATCH)) writeValue(o, x);
      o.byte(OP.APPENDS);
    }
    return;
  }
  if (v instanceof Map) {
    o.byte(OP.EMPTY_DICT);
    return writeItems(o, [...v]);
  }
  if (v instanceof PyGlobal) {
    for (const part of [v.module, v.name])
      if (/[\n\r]/.test(part) || part === '') throw new Error(`pickle: bad global name ${JSON.stringify(part)}`);
    o.byte(OP.GLOBAL);
    return o.bytes(utf8.encode(`${v.module}\n${v.name}\n`));
  }
  if (v instanceof PyCall) {
    writeValue(o, v.callable);
    writeValue(o, v.args);
    o.byte(OP.REDUCE);
    if (v.items) writeItems(o, v.items);
    return;
  }
  if (v instanceof PyInstance) {
    writeValue(o, v.cls);
    o.byte(OP.EMPTY_TUPLE);
    o.byte(OP.NEWOBJ);
    writeValue(o, v.state);
    return o.byte(OP.BUILD);
  }
  if (v instanceof PyPersistent) {
    writeValue(o, v.id);
    return o.byte(OP.BINPERSID);
  }
  throw new Error(`pickle: no Python value for ${typeof v}`);
}

function writeItems(o: Out, items: readonly (readonly [PyValue, PyValue])[]): void {
  for (let i = 0; i < items.length; i += BATCH) {
    o.byte(OP.MARK);
    for (const [k, x] of items.slice(i, i + BATCH)) {
      writeValue(o, k);
      writeValue(o, x);
    }
    o.byte(OP.SETITEMS);
  }
}

/** The protocol-2 pickle of `v`. */
export function pickle(v: PyValue): Uint8Array {
  const o = new Out();
  o.byte(OP.PROTO);
  o.byte(2);
  writeValue(o, v);
  o.byte(OP.STOP);
  return o.done();
}
