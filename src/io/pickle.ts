// An allow-list unpickler: a pickle virtual machine for protocols 0-5 that can only ever name the globals its
// caller lists. Nothing in a pickle is executed: GLOBAL / STACK_GLOBAL / INST look the name up in the caller's
// allow-list and refuse every other name on the spot, before anything else is read, so REDUCE / NEWOBJ / OBJ can
// only ever call one of the caller's own JavaScript functions, which build plain values.
//
// Python values map to JavaScript as follows:
//   None -> null, bool -> boolean, int -> number (or bigint beyond 2^53), float -> number, str -> string,
//   bytes / bytearray -> Uint8Array, list -> Array, tuple -> frozen Array, dict -> Map, set / frozenset -> Set,
//   instances built by NEWOBJ of an allowed class -> whatever the allowed function returns (typically PyObject).
import { anyToString, VslError } from '../util/errors.js';

/** Objects returned by allowed globals may implement this to receive the state of a BUILD opcode. */
export const SETSTATE: unique symbol = Symbol('vsl.pickle.setstate');

/** A Python instance of an allowed class, with its attributes (from BUILD) in `attrs`. */
export class PyObject {
  readonly attrs: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  constructor(readonly className: string) {}
}

/** The allow-list: "module.name" -> a JS function (callable by REDUCE / NEWOBJ) or an inert marker value. */
export type AllowList = ReadonlyMap<string, unknown>;

export interface UnpickleOptions {
  /** Globals the pickle may name. Anything else is refused with a RefusedGlobalError. */
  allow: AllowList;
  /** Resolves a persistent id (BINPERSID / PERSID); without it persistent ids are an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** File name (and part, e.g. `x.pth.tar:archive/data.pkl`) used in error messages. */
  file?: string;
}

/** A malformed or unsupported pickle. */
export class PickleError extends VslError {}

/** The pickle names a global outside the allow-list. `global` is its dotted name, e.g. `posix.system`. */
export class RefusedGlobalError extends VslError {
  constructor(
    readonly file: string,
    readonly global: string,
    readonly offset: number,
  ) {
    super(
      `${file}: pickle global at byte ${offset}: expected an allowed global, found ${global} ` +
        `(refused: a checkpoint may not name arbitrary Python callables; nothing was run)`,
    );
    this.name = 'RefusedGlobalError';
  }
}

const attrTable = new WeakMap<object, Map<string, unknown>>();

/** Attributes a BUILD opcode set on a dict-like object (e.g. an OrderedDict's `_metadata`), if any. */
export function pyAttributes(obj: object): ReadonlyMap<string, unknown> | undefined {
  return attrTable.get(obj);
}

/** True for a Python tuple (unpickled as a frozen array). */
export function isTuple(v: unknown): v is readonly unknown[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

const PY2_MODULES = new Map([
  ['__builtin__', 'builtins'],
  ['copy_reg', 'copyreg'],
  ['exceptions', 'builtins'],
]);

const utf8 = new TextDecoder('utf-8');
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** Python 2 `str` (BINSTRING etc.): UTF-8 when it decodes as such, else latin-1 (torch.load uses utf-8). */
function py2str(bytes: Uint8Array): string {
  try {
    return utf8Fatal.decode(bytes);
  } catch {
    return latin1(bytes);
  }
}

function intFromBigInt(b: bigint): number | bigint {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** Little-endian two's complement bytes (LONG1 / LONG4) to an integer. */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  if (bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return intFromBigInt(v);
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return `a ${isTuple(v) ? 'tuple' : 'list'} of ${v.length}`;
  if (v instanceof Map) return 'a dict';
  if (v instanceof Set) return 'a set';
  if (v instanceof Uint8Array) return `bytes of length ${v.length}`;
  if (v instanceof PyObject) return `a ${v.className} object`;
  if (typeof v === 'function') return 'a global function';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${anyToString(v)}`;
}

/** Python string-literal escapes of protocol 0 STRING ('...' or "..."). */
function unescapePyString(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = s[++i];
    switch (n) {
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'a':
        out += '\x07';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'v':
        out += '\v';
        break;
      case '\\':
        out += '\\';
        break;
      case "'":
        out += "'";
        break;
      case '"':
        out += '"';
        break;
      case '\n':
        break;
      case 'x':
        out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
        i += 2;
        break;
      default:
        if (n !== undefined && n >= '0' && n <= '7') {
          let j = i;
          while (j < i + 3 && s[j] >= '0' && s[j] <= '7') j++;
          out += String.fromCharCode(parseInt(s.slice(i, j), 8));
          i = j - 1;
        } else out += '\\' + (n ?? '');
    }
  }
  return out;
}

/** Protocol 0 UNICODE: raw-unicode-escape (\uXXXX, \UXXXXXXXX; other bytes latin-1). */
function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, a: string | undefined, b: string | undefined) =>
    String.fromCodePoint(parseInt((a ?? b)!, 16)),
  );
}

// Opcode bytes, named as in CPython's pickle.py.
const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  POP_MARK: 0x31,
  DUP: 0x32,
  FLOAT: 0x46,
  INT: 0x49,
  BININT: 0x4a,
  BININT1: 0x4b,
  LONG: 0x4c,
  BININT2: 0x4d,
  NONE: 0x4e,
  PERSID: 0x50,
  BINPERSID: 0x51,
  REDUCE: 0x52,
  STRING: 0x53,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  UNICODE: 0x56,
  BINUNICODE: 0x58,
  APPEND: 0x61,
  BUILD: 0x62,
  GLOBAL: 0x63,
  DICT: 0x64,
  EMPTY_DICT: 0x7d,
  APPENDS: 0x65,
  GET: 0x67,
  BINGET: 0x68,
  INST: 0x69,
  LONG_BINGET: 0x6a,
  LIST: 0x6c,
  EMPTY_LIST: 0x5d,
  OBJ: 0x6f,
  PUT: 0x70,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  SETITEM: 0x73,
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  SETITEMS: 0x75,
  BINFLOAT: 0x47,
  PROTO: 0x80,
  NEWOBJ: 0x81,
  EXT1: 0x82,
  EXT2: 0x83,
  EXT4: 0x84,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  LONG4: 0x8b,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  NEWOBJ_EX: 0x92,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97,
  READONLY_BUFFER: 0x98,
} as const;

const OP_NAME = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

/** The result of one pickle: its value and the offset just past its STOP opcode. */
export interface UnpickleResult {
  value: unknown;
  end: number;
}

/**
 * Unpickle one pickle starting at `offset` of `data`. Only globals in `opts.allow` can be named; any other global
 * throws RefusedGlobalError as soon as its GLOBAL / STACK_GLOBAL / INST opcode is read.
 */
export function unpickle(data: Uint8Array, opts: UnpickleOptions, offset = 0): UnpickleResult {
  return new Machine(data, opts).run(offset);
}

class Machine {
  private pos = 0;
  private opStart = 0;
  private op = 0;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly file: string;
  private readonly view: DataView;
  /** The function values of the allow-list: the only things REDUCE / NEWOBJ / OBJ may call. */
  private readonly callables: Set<unknown>;
  private readonly names = new Map<unknown, string>();

  constructor(
    private readonly data: Uint8Array,
    private readonly opts: UnpickleOptions,
  ) {
    this.file = opts.file ?? '<pickle>';
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.callables = new Set([...opts.allow.values()].filter((v) => typeof v === 'function'));
    for (const [k, v] of opts.allow) if (typeof v === 'function' && !this.names.has(v)) this.names.set(v, k);
  }

  private fail(what: string): PickleError {
    const name = OP_NAME.get(this.op) ?? `0x${this.op.toString(16).padStart(2, '0')}`;
    return new PickleError(`${this.file}: pickle at byte ${this.opStart} (${name}): ${what}`);
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.data.length)
      throw this.fail(`expected ${n} more bytes, found ${this.data.length - this.pos} (truncated pickle)`);
  }
  private u8(): number {
    this.need(1);
    return this.data[this.pos++];
  }
  private u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(`length ${v} is impossible`);
    return Number(v);
  }
  private bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** A protocol-0 text argument: bytes up to the next newline (exclusive), as latin-1. */
  private line(): string {
    const nl = this.data.indexOf(0x0a, this.pos);
    if (nl < 0) throw this.fail('expected a newline-terminated argument, found the end of the data (truncated pickle)');
    const s = latin1(this.data.subarray(this.pos, nl));
    this.pos = nl + 1;
    return s;
  }

  private push(v: unknown): void {
    this.stack.push(v);
  }
  private pop(): unknown {
    if (this.stack.length === 0)
      throw this.fail('expected a value on the stack, found an empty stack (malformed pickle)');
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length === 0)
      throw this.fail('expected a value on the stack, found an empty stack (malformed pickle)');
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (prev === undefined) throw this.fail('expected a MARK before this opcode, found none (malformed pickle)');
    this.stack = prev;
    return items;
  }

  /** Resolve a global through the allow-list; refuse anything else before it can be used. */
  private global(module: string, name: string): unknown {
    // Python 2 module names, renamed as Python 3's unpickler does (fix_imports) so that one name covers both
    const full = `${PY2_MODULES.get(module) ?? module}.${name}`;
    const allow = this.opts.allow;
    if (!allow.has(full)) throw new RefusedGlobalError(this.file, full, this.opStart);
    return allow.get(full);
  }

  private call(fn: unknown, args: unknown, what: string): unknown {
    if (!Array.isArray(args)) throw this.fail(`expected a tuple of arguments for ${what}, found ${describe(args)}`);
    if (typeof fn !== 'function' || !this.callables.has(fn))
      throw this.fail(`expected an allowed callable global for ${what}, found ${describe(fn)}`);
    const name = this.names.get(fn) ?? what;
    const argv: unknown[] = args;
    return this.guard(name, () => (fn as (...a: unknown[]) => unknown)(...argv));
  }

  /** Run caller code (an allowed function, the persistent loader); report its plain errors with file and offset. */
  private guard<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof VslError) throw e;
      throw this.fail(`${what}: ${(e as Error).message}`);
    }
  }

  private setItems(target: unknown, kv: unknown[]): void {
    if (!(target instanceof Map)) throw this.fail(`expected a dict to set items on, found ${describe(target)}`);
    if (kv.length % 2) throw this.fail(`expected key/value pairs, found an odd number (${kv.length}) of items`);
    for (let i = 0; i < kv.length; i += 2) target.set(kv[i], kv[i + 1]);
  }

  private appendItems(target: unknown, items: unknown[]): void {
    if (!Array.isArray(target) || Object.isFrozen(target))
      throw this.fail(`expected a list to append to, found ${describe(target)}`);
    for (const v of items) target.push(v);
  }

  private setAttrs(obj: unknown, state: unknown): void {
    const put = (dict: unknown): void => {
      if (dict === null) return;
      if (!(dict instanceof Map)) throw this.fail(`expected a dict of attributes in BUILD, found ${describe(dict)}`);
      for (const [k, v] of dict) {
        if (typeof k !== 'string') throw this.fail(`expected string attribute names in BUILD, found ${describe(k)}`);
        if (obj instanceof PyObject) {
          Object.defineProperty(obj.attrs, k, { value: v, enumerable: true, writable: true, configurable: true });
        } else if (obj instanceof Map) {
          let t = attrTable.get(obj);
          if (!t) attrTable.set(obj, (t = new Map<string, unknown>()));
          t.set(k, v);
        } else throw this.fail(`expected an object that takes attributes in BUILD, found ${describe(obj)}`);
      }
    };
    if (isTuple(state) && state.length === 2) {
      put(state[0]); // (dict state, slot state)
      put(state[1]);
    } else put(state);
  }

  run(offset: number): UnpickleResult {
    this.pos = offset;
    for (;;) {
      this.opStart = this.pos;
      if (this.pos >= this.data.length)
        throw new PickleError(
          `${this.file}: pickle at byte ${this.pos}: expected an opcode, found the end of the data (truncated pickle)`,
        );
      const op = (this.op = this.data[this.pos++]!);
      switch (op) {
        // ---- framing and protocol
        case OP.PROTO: {
          const p = this.u8();
          if (p > 5) throw this.fail(`expected pickle protocol 0-5, found ${p}`);
          break;
        }
        case OP.FRAME:
          this.u64(); // frame length: only a read-ahead hint
          break;
        case OP.STOP: {
          const value = this.pop();
          return { value, end: this.pos };
        }
        // ---- stack manipulation
        case OP.MARK:
          this.metastack.push(this.stack);
          this.stack = [];
          break;
        case OP.POP:
          if (this.stack.length) this.stack.pop();
          else this.popMark();
          break;
        case OP.POP_MARK:
          this.popMark();
          break;
        case OP.DUP:
          this.push(this.top());
          break;
        // ---- memo
        case OP.PUT:
          this.memo.set(parseInt(this.line(), 10), this.top());
          break;
        case OP.BINPUT:
          this.memo.set(this.u8(), this.top());
          break;
        case OP.LONG_BINPUT:
          this.memo.set(this.u32(), this.top());
          break;
        case OP.MEMOIZE:
          this.memo.set(this.memo.size, this.top());
          break;
        case OP.GET:
        case OP.BINGET:
        case OP.LONG_BINGET: {
          const i = op === OP.GET ? parseInt(this.line(), 10) : op === OP.BINGET ? this.u8() : this.u32();
          if (!this.memo.has(i)) throw this.fail(`expected memo entry ${i}, found none (malformed pickle)`);
          this.push(this.memo.get(i));
          break;
        }
        // ---- constants and numbers
        case OP.NONE:
          this.push(null);
          break;
        case OP.NEWTRUE:
          this.push(true);
          break;
        case OP.NEWFALSE:
          this.push(false);
          break;
        case OP.BININT:
          this.push(this.i32());
          break;
        case OP.BININT1:
          this.push(this.u8());
          break;
        case OP.BININT2:
          this.push(this.u16());
          break;
        case OP.LONG1:
          this.push(decodeLong(this.bytes(this.u8())));
          break;
        case OP.LONG4: {
          const n = this.i32();
          if (n < 0) throw this.fail(`expected a non-negative LONG4 length, found ${n}`);
          this.push(decodeLong(this.bytes(n)));
          break;
        }
        case OP.INT: {
          const s = this.line().trim();
          if (s === '01') this.push(true);
          else if (s === '00') this.push(false);
          else if (/^[-+]?\d+$/.test(s)) this.push(intFromBigInt(BigInt(s)));
          else throw this.fail(`expected a decimal integer, found ${JSON.stringify(s)}`);
          break;
        }
        case OP.LONG: {
          const s = this.line().trim().replace(/L$/, '');
          if (!/^[-+]?\d+$/.test(s)) throw this.fail(`expected a decimal integer, found ${JSON.stringify(s)}`);
          this.push(intFromBigInt(BigInt(s)));
          break;
        }
        case OP.FLOAT: {
          const s = this.line().trim();
          const v = s === 'inf' ? Infinity : s === '-inf' ? -Infinity : s === 'nan' ? NaN : Number(s);
          if (Number.isNaN(v) && s !== 'nan') throw this.fail(`expected a float, found ${JSON.stringify(s)}`);
          this.push(v);
          break;
        }
        case OP.BINFLOAT:
          this.need(8);
          this.push(this.view.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        // ---- strings and bytes
        case OP.BINUNICODE:
          this.push(utf8.decode(this.bytes(this.u32())));
          break;
        case OP.SHORT_BINUNICODE:
          this.push(utf8.decode(this.bytes(this.u8())));
          break;
        case OP.BINUNICODE8:
          this.push(utf8.decode(this.bytes(this.u64())));
          break;
        case OP.UNICODE:
          this.push(rawUnicodeEscape(this.line()));
          break;
        case OP.STRING: {
          const s = this.line().trimEnd();
          const q = s[0];
          if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q)
            throw this.fail(`expected a quoted string, found ${JSON.stringify(s.slice(0, 40))}`);
          this.push(unescapePyString(s.slice(1, -1)));
          break;
        }
        case OP.BINSTRING: {
          const n = this.i32();
          if (n < 0) throw this.fail(`expected a non-negative BINSTRING length, found ${n}`);
          this.push(py2str(this.bytes(n)));
          break;
        }
        case OP.SHORT_BINSTRING:
          this.push(py2str(this.bytes(this.u8())));
          break;
        case OP.BINBYTES:
          this.push(this.bytes(this.u32()).slice());
          break;
        case OP.SHORT_BINBYTES:
          this.push(this.bytes(this.u8()).slice());
          break;
        case OP.BINBYTES8:
        case OP.BYTEARRAY8:
          this.push(this.bytes(this.u64()).slice());
          break;
        case OP.NEXT_BUFFER:
          throw this.fail('expected in-band data, found an out-of-band buffer (not supported)');
        case OP.READONLY_BUFFER:
          break;
        // ---- containers
        case OP.EMPTY_TUPLE:
          this.push(Object.freeze([]));
          break;
        case OP.TUPLE1: {
          const a = this.pop();
          this.push(Object.freeze([a]));
          break;
        }
        case OP.TUPLE2: {
          const b = this.pop();
          const a = this.pop();
          this.push(Object.freeze([a, b]));
          break;
        }
        case OP.TUPLE3: {
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(Object.freeze([a, b, c]));
          break;
        }
        case OP.TUPLE:
          this.push(Object.freeze(this.popMark()));
          break;
        case OP.EMPTY_LIST:
          this.push([]);
          break;
        case OP.LIST:
          this.push(this.popMark());
          break;
        case OP.APPEND: {
          const v = this.pop();
          this.appendItems(this.top(), [v]);
          break;
        }
        case OP.APPENDS: {
          const items = this.popMark();
          this.appendItems(this.top(), items);
          break;
        }
        case OP.EMPTY_DICT:
          this.push(new Map());
          break;
        case OP.DICT: {
          const d = new Map();
          this.setItems(d, this.popMark());
          this.push(d);
          break;
        }
        case OP.SETITEM: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case OP.SETITEMS: {
          const kv = this.popMark();
          this.setItems(this.top(), kv);
          break;
        }
        case OP.EMPTY_SET:
          this.push(new Set());
          break;
        case OP.ADDITEMS: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set) || Object.isFrozen(s)) throw this.fail(`expected a set, found ${describe(s)}`);
          for (const v of items) s.add(v);
          break;
        }
        case OP.FROZENSET:
          this.push(Object.freeze(new Set(this.popMark())));
          break;
        // ---- globals and object construction
        case OP.GLOBAL: {
          const module = this.line();
          const name = this.line();
          this.push(this.global(module, name));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string')
            throw this.fail(`expected module and name strings, found ${describe(module)} and ${describe(name)}`);
          this.push(this.global(module, name));
          break;
        }
        case OP.INST: {
          const module = this.line();
          const name = this.line();
          const cls = this.global(module, name);
          const args = Object.freeze(this.popMark());
          this.push(this.call(cls, args, `${module}.${name}`));
          break;
        }
        case OP.OBJ: {
          const items = this.popMark();
          if (items.length === 0) throw this.fail('expected a class after MARK, found nothing');
          const [cls, ...args] = items;
          this.push(this.call(cls, Object.freeze(args), 'OBJ'));
          break;
        }
        case OP.REDUCE: {
          const args = this.pop();
          const fn = this.pop();
          this.push(this.call(fn, args, 'REDUCE'));
          break;
        }
        case OP.NEWOBJ: {
          const args = this.pop();
          const cls = this.pop();
          this.push(this.call(cls, args, 'NEWOBJ'));
          break;
        }
        case OP.NEWOBJ_EX: {
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(kwargs instanceof Map) || kwargs.size !== 0)
            throw this.fail(`expected no keyword arguments, found ${describe(kwargs)}`);
          this.push(this.call(cls, args, 'NEWOBJ_EX'));
          break;
        }
        case OP.BUILD: {
          const state = this.pop();
          const obj = this.top();
          const setState =
            obj !== null && typeof obj === 'object' ? (obj as { [SETSTATE]?: unknown })[SETSTATE] : undefined;
          if (typeof setState === 'function') (setState as (s: unknown) => void).call(obj, state);
          else this.setAttrs(obj, state);
          break;
        }
        case OP.PERSID:
        case OP.BINPERSID: {
          const pid = op === OP.PERSID ? this.line() : this.pop();
          if (!this.opts.persistentLoad) throw this.fail('expected no persistent ids, found one (no loader given)');
          const load = this.opts.persistentLoad;
          this.push(this.guard('persistent id', () => load(pid)));
          break;
        }
        case OP.EXT1:
        case OP.EXT2:
        case OP.EXT4: {
          const code = op === OP.EXT1 ? this.u8() : op === OP.EXT2 ? this.u16() : this.i32();
          throw this.fail(`expected no copyreg extension codes, found code ${code} (refused)`);
        }
        default:
          throw this.fail(`expected a pickle opcode, found byte 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  }
}
