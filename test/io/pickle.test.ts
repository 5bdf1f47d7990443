// Unit tests of the allow-list unpickler on pickles assembled by hand, byte by byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isTuple,
  PickleError,
  PyObject,
  pyAttributes,
  RefusedGlobalError,
  SETSTATE,
  unpickle,
} from '../../src/io/pickle.js';

const enc = new TextEncoder();

/** Concatenate opcode bytes, numbers (one byte each) and latin-1 strings. */
function b(...parts: (number | string | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') for (const c of p) out.push(c.charCodeAt(0));
    else out.push(...p);
  }
  return new Uint8Array(out);
}
const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: number): Uint8Array => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);
/** BINUNICODE */
const X = (s: string): Uint8Array => {
  const e = enc.encode(s);
  return b('X', u32(e.length), e);
};
/** SHORT_BINUNICODE */
const S8 = (s: string): Uint8Array => {
  const e = enc.encode(s);
  return b(0x8c, e.length, e);
};
const GLOBAL = (m: string, n: string): Uint8Array => b('c', m, '\n', n, '\n');
const none = new Map<string, unknown>();

test('protocol 2: dict, ints, LONG1, floats, strings, tuples, lists, None and bools', () => {
  const data = b(
    0x80,
    2,
    '}',
    'q',
    0,
    '(',
    X('small'),
    'K',
    200,
    X('neg'),
    'J',
    new Uint8Array(new Int32Array([-70000]).buffer),
    X('u16'),
    'M',
    0x34,
    0x12,
    X('long'),
    0x8a,
    9,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0x00, // 2^64 - 1
    X('neglong'),
    0x8a,
    1,
    0xfe, // -2
    X('float'),
    'G',
    new Uint8Array([0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18]), // pi, big-endian
    X('tuple'),
    'K',
    1,
    'K',
    2,
    0x86,
    X('list'),
    ']',
    'q',
    1,
    '(',
    'K',
    3,
    0x88,
    0x89,
    'N',
    'e',
    X('unicode'),
    X('héllo ☃'),
    X('empty'),
    ')',
    'u',
    '.',
  );
  const { value, end } = unpickle(data, { allow: none });
  assert.equal(end, data.length);
  assert.ok(value instanceof Map);
  const m = value as Map<string, unknown>;
  assert.deepEqual(
    [...m.keys()],
    ['small', 'neg', 'u16', 'long', 'neglong', 'float', 'tuple', 'list', 'unicode', 'empty'],
  );
  assert.equal(m.get('small'), 200);
  assert.equal(m.get('neg'), -70000);
  assert.equal(m.get('u16'), 0x1234);
  assert.equal(m.get('long'), 2n ** 64n - 1n);
  assert.equal(m.get('neglong'), -2);
  assert.equal(m.get('float'), Math.PI);
  assert.deepEqual(m.get('tuple'), [1, 2]);
  assert.ok(isTuple(m.get('tuple')));
  assert.deepEqual(m.get('list'), [3, true, false, null]);
  assert.ok(!isTuple(m.get('list')));
  assert.equal(m.get('unicode'), 'héllo ☃');
  assert.deepEqual(m.get('empty'), []);
});

test('protocol 0 text opcodes: DICT, LIST, INT, LONG, FLOAT, STRING, UNICODE, PUT/GET', () => {
  const data = b(
    '(dp0\n',
    "S'a\\'b\\n\\x41'\np1\n",
    'I42\n',
    's',
    'Vsnow \\u2603\np2\n',
    '(lp3\nF1.5\naL12345678901234567890L\naI01\na',
    's',
    'g1\n',
    'I-7\n',
    's', // the memoised key 'a\'b\nA' again: overwrites
    '.',
  );
  const { value } = unpickle(data, { allow: none });
  const m = value as Map<string, unknown>;
  assert.deepEqual(
    [...m.entries()],
    [
      ["a'b\nA", -7],
      ['snow ☃', [1.5, 12345678901234567890n, true]],
    ],
  );
});

test('protocol 4/5: FRAME, MEMOIZE, STACK_GLOBAL (allowed), sets, BINBYTES8, BYTEARRAY8', () => {
  const made: unknown[][] = [];
  const allow = new Map<string, unknown>([['mod.make', (...a: unknown[]) => (made.push(a), { made: a.length })]]);
  const body = b(
    ']',
    0x94,
    '(',
    S8('mod'),
    0x94,
    S8('make'),
    0x94,
    0x93,
    0x94,
    'K',
    5,
    0x85,
    'R',
    0x94,
    0x8f,
    0x94,
    '(',
    'K',
    1,
    'K',
    2,
    'K',
    2,
    0x90,
    0x8e,
    u64(3),
    'abc',
    0x96,
    u64(2),
    0x00,
    0xff,
    'h',
    0, // BINGET the list itself
    'e',
    '.',
  );
  const data = b(0x80, 5, 0x95, u64(body.length), body);
  const { value } = unpickle(data, { allow });
  const list = value as unknown[];
  assert.equal(list.length, 5);
  assert.deepEqual(list[0], { made: 1 });
  assert.deepEqual(made, [[5]]);
  assert.deepEqual(list[1], new Set([1, 2]));
  assert.deepEqual(list[2], new Uint8Array([0x61, 0x62, 0x63]));
  assert.deepEqual(list[3], new Uint8Array([0, 255]));
  assert.equal(list[4], list, 'BINGET returns the very same memoised object');
});

test('consecutive pickles: `end` points just past STOP', () => {
  const data = b(0x80, 2, 'K', 1, '.', 0x80, 2, X('two'), '.');
  const first = unpickle(data, { allow: none });
  assert.equal(first.value, 1);
  const second = unpickle(data, { allow: none }, first.end);
  assert.equal(second.value, 'two');
  assert.equal(second.end, data.length);
});

// ------------------------------------------------------------------------------------------------ refusals

function refused(data: Uint8Array, allow: Map<string, unknown>, global: string): void {
  assert.throws(
    () => unpickle(data, { allow, file: 'evil.pkl' }),
    (e: unknown) => {
      assert.ok(e instanceof RefusedGlobalError, `expected RefusedGlobalError, got ${String(e)}`);
      assert.equal(e.global, global);
      assert.match(e.message, /^evil\.pkl: /);
      assert.ok(e.message.includes(global), e.message);
      return true;
    },
  );
}

test('GLOBAL posix.system is refused at GLOBAL time, before its arguments or REDUCE are read', () => {
  let calls = 0;
  const allow = new Map<string, unknown>([['collections.OrderedDict', () => (calls++, new Map())]]);
  // after the GLOBAL comes an invalid opcode (0xff): a refusal at GLOBAL time is the only way to get a RefusedGlobalError
  refused(b(0x80, 2, GLOBAL('posix', 'system'), 0xff), allow, 'posix.system');
  refused(b(0x80, 2, GLOBAL('posix', 'system'), X('touch /tmp/x'), 0x85, 'R', '.'), allow, 'posix.system');
  refused(b(0x80, 2, GLOBAL('os', 'system'), X('id'), 0x85, 'R', '.'), allow, 'os.system');
  refused(b(0x80, 2, GLOBAL('subprocess', 'Popen'), X('id'), 0x85, 'R', '.'), allow, 'subprocess.Popen');
  assert.equal(calls, 0);
});

test('STACK_GLOBAL builtins.eval and protocol-0 INST os.system are refused', () => {
  refused(b(0x80, 4, S8('builtins'), S8('eval'), 0x93, S8('1+1'), 0x85, 'R', '.'), none, 'builtins.eval');
  refused(b('(', "S'id'\n", 'ios\nsystem\n', '.'), none, 'os.system');
  // Python 2 spelling is mapped to the Python 3 name (as Python's own unpickler does)
  refused(b(0x80, 2, GLOBAL('__builtin__', 'eval'), 0xff), none, 'builtins.eval');
});

test('builtins.set and builtins.getattr are refused unless the caller allows them', () => {
  const setPickle = b(0x80, 2, GLOBAL('builtins', 'set'), ']', 'K', 1, 'a', 0x85, 'R', '.');
  refused(setPickle, none, 'builtins.set');
  refused(b(0x80, 2, GLOBAL('builtins', 'getattr'), 'N', X('x'), 0x86, 'R', '.'), none, 'builtins.getattr');
  const allow = new Map<string, unknown>([['builtins.set', (items: unknown[]) => new Set(items)]]);
  assert.deepEqual(unpickle(setPickle, { allow }).value, new Set([1]));
});

test('only allow-listed functions can be called: a marker value or a returned function is not callable', () => {
  const marker = { storage: 'float' };
  const sneaky = (): unknown => () => 'should never run';
  const allow = new Map<string, unknown>([
    ['torch.FloatStorage', marker],
    ['mod.sneaky', sneaky],
  ]);
  assert.throws(
    () => unpickle(b(0x80, 2, GLOBAL('torch', 'FloatStorage'), ')', 'R', '.'), { allow }),
    (e: unknown) => {
      assert.ok(e instanceof PickleError);
      assert.match(e.message, /REDUCE.*expected an allowed callable global/);
      return true;
    },
  );
  // mod.sneaky() returns a function; calling that result must be refused
  const data = b(0x80, 2, GLOBAL('mod', 'sneaky'), ')', 'R', ')', 'R', '.');
  assert.throws(() => unpickle(data, { allow }), /expected an allowed callable global/);
});

test('BUILD sets attributes as own data properties (no prototype pollution) and calls SETSTATE', () => {
  class WithState {
    got: unknown;
    [SETSTATE](s: unknown): void {
      this.got = s;
    }
  }
  const allow = new Map<string, unknown>([
    ['argparse.Namespace', () => new PyObject('argparse.Namespace')],
    ['m.W', () => new WithState()],
    ['collections.OrderedDict', () => new Map()],
  ]);
  const data = b(
    0x80,
    2,
    ']',
    '(',
    GLOBAL('argparse', 'Namespace'),
    ')',
    0x81,
    '}',
    '(',
    X('__proto__'),
    '}',
    X('polluted'),
    0x88,
    's',
    X('lr'),
    'G',
    new Uint8Array([0x3f, 0x2a, 0x36, 0xe2, 0xeb, 0x1c, 0x43, 0x2d]),
    'u',
    'b',
    GLOBAL('m', 'W'),
    ')',
    'R',
    'K',
    3,
    X('<'),
    0x86,
    'b',
    GLOBAL('collections', 'OrderedDict'),
    ')',
    'R',
    '}',
    X('_metadata'),
    'K',
    1,
    's',
    'b',
    'e',
    '.',
  );
  const [ns, w, od] = unpickle(data, { allow }).value as [PyObject, WithState, Map<unknown, unknown>];
  assert.equal(ns.className, 'argparse.Namespace');
  assert.deepEqual(Object.keys(ns.attrs), ['__proto__', 'lr']);
  assert.equal(ns.attrs['lr'], 0.0002);
  assert.ok(Object.getOwnPropertyDescriptor(ns.attrs, '__proto__')?.value instanceof Map);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getPrototypeOf(ns.attrs), null);
  assert.deepEqual(w.got, [3, '<']);
  assert.equal(od.size, 0);
  assert.equal(pyAttributes(od)?.get('_metadata'), 1);
});

// ------------------------------------------------------------------------------------------------ malformed data

test('malformed or truncated pickles give clear errors with the byte offset', () => {
  const cases: [Uint8Array, RegExp][] = [
    [b(0x80, 2, 'X', u32(100), 'abc'), /byte 2 \(BINUNICODE\): expected 100 more bytes, found 3 \(truncated pickle\)/],
    [b(0x80, 2, 'K', 1), /byte 4: expected an opcode, found the end of the data \(truncated pickle\)/],
    [b(0x80, 2, 'K', 1, 't', '.'), /\(TUPLE\): expected a MARK/],
    [b(0x80, 2, 'h', 9, '.'), /\(BINGET\): expected memo entry 9/],
    [b(0x80, 2, 0xfe, '.'), /expected a pickle opcode, found byte 0xfe/],
    [b(0x80, 9, '.'), /expected pickle protocol 0-5, found 9/],
    [b(0x80, 2, 'K', 1, 'K', 2, 's', '.'), /\(SETITEM\): expected a value on the stack/],
    [b(0x80, 2, 'K', 1, 'K', 2, 'K', 3, 's', '.'), /\(SETITEM\): expected a dict to set items on, found number 1/],
    [b(0x80, 2, 'K', 1, 'Q', '.'), /\(BINPERSID\): expected no persistent ids/],
    [b(0x80, 2, 0x82, 7, '.'), /EXT1.*extension codes, found code 7/],
    [b(0x80, 2, ')', 'K', 1, 'a', '.'), /\(APPEND\): expected a list to append to, found a tuple of 0/],
  ];
  for (const [data, re] of cases) {
    assert.throws(
      () => unpickle(data, { allow: none, file: 'bad.pkl' }),
      (e: unknown) => {
        assert.ok(e instanceof PickleError, String(e));
        assert.match(e.message, /^bad\.pkl: pickle at byte \d+/);
        assert.match(e.message, re);
        return true;
      },
    );
  }
});

test('errors thrown by an allowed function are reported with the global name and file', () => {
  const allow = new Map<string, unknown>([
    [
      'm.f',
      () => {
        throw new Error('expected 2 arguments');
      },
    ],
  ]);
  assert.throws(
    () => unpickle(b(0x80, 2, GLOBAL('m', 'f'), ')', 'R', '.'), { allow, file: 'f.pkl' }),
    (e: unknown) => {
      assert.ok(e instanceof PickleError);
      assert.equal(e.message, 'f.pkl: pickle at byte 8 (REDUCE): m.f: expected 2 arguments');
      return true;
    },
  );
});

test("persistent ids go to the caller's loader", () => {
  const seen: unknown[] = [];
  const data = b(0x80, 2, X('k'), X('0'), 0x86, 'Q', 'P', 'plain\n', 0x86, '.');
  const { value } = unpickle(data, { allow: none, persistentLoad: (pid) => (seen.push(pid), `loaded ${seen.length}`) });
  assert.deepEqual(value, ['loaded 1', 'loaded 2']);
  assert.deepEqual(seen, [['k', '0'], 'plain']);
});
