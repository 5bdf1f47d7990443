// Where a pickle's value bytes are (protocol 0-4 opcodes as torch's legacy container uses them), so that the fuzz
// harness can leave them alone: an integer, float or string argument, a True/False/None, or a memo index changed in
// an unchecked container is another valid checkpoint, not damage a reader could see; so is a string's length (a
// longer one can swallow the next opcodes and still parse). Opcodes and global names are structure.

/** Argument layout per opcode: [fixed value bytes] | ['len', prefix bytes] | ['line', count] | 'value-op'. */
const ARGS: Record<number, number | ['len', number] | ['line', number] | 'value-op'> = {
  0x4e: 'value-op', // NONE
  0x88: 'value-op', // NEWTRUE
  0x89: 'value-op', // NEWFALSE
  0x4b: 1, // BININT1
  0x4d: 2, // BININT2
  0x4a: 4, // BININT
  0x47: 8, // BINFLOAT
  0x71: 1, // BINPUT
  0x72: 4, // LONG_BINPUT
  0x68: 1, // BINGET
  0x6a: 4, // LONG_BINGET
  0x8a: ['len', 1], // LONG1
  0x8b: ['len', 4], // LONG4
  0x8c: ['len', 1], // SHORT_BINUNICODE
  0x58: ['len', 4], // BINUNICODE
  0x8d: ['len', 8], // BINUNICODE8
  0x55: ['len', 1], // SHORT_BINSTRING
  0x54: ['len', 4], // BINSTRING
  0x43: ['len', 1], // SHORT_BINBYTES
  0x42: ['len', 4], // BINBYTES
  0x8e: ['len', 8], // BINBYTES8
  0x49: ['line', 1], // INT
  0x4c: ['line', 1], // LONG
  0x46: ['line', 1], // FLOAT
  0x53: ['line', 1], // STRING
  0x56: ['line', 1], // UNICODE
  0x67: ['line', 1], // GET
  0x70: ['line', 1], // PUT
};
const STRUCTURE_ARGS: Record<number, number> = { 0x80: 1, 0x95: 8 };
const GLOBAL = 0x63; // two text lines: module and name (structure: a change is refused by the allow-list)
const STOP = 0x2e;

/** Value-byte ranges of the pickle starting at `start`; also where it ends. */
export function pickleValueBytes(b: Uint8Array, start: number): { values: [number, number][]; end: number } {
  const values: [number, number][] = [];
  const lineEnd = (p: number): number => b.indexOf(0x0a, p) + 1;
  let p = start;
  for (;;) {
    const op = b[p];
    p++;
    if (op === STOP) return { values, end: p };
    if (op === GLOBAL) {
      p = lineEnd(lineEnd(p));
      continue;
    }
    if (STRUCTURE_ARGS[op] !== undefined) {
      p += STRUCTURE_ARGS[op];
      continue;
    }
    const a = ARGS[op];
    if (a === undefined) continue; // an opcode without argument
    if (a === 'value-op') values.push([p - 1, p]);
    else if (typeof a === 'number') {
      values.push([p, p + a]);
      p += a;
    } else if (a[0] === 'len') {
      // the length belongs to the value: a changed length that swallows the next opcodes can still parse
      let n = 0;
      for (let k = a[1] - 1; k >= 0; k--) n = n * 256 + b[p + k];
      values.push([p, p + a[1] + n]);
      p += a[1] + n;
    } else {
      const e = lineEnd(p);
      values.push([p, e - 1]);
      p = e;
    }
  }
}

/** [from, to) minus the given ranges. */
export function subtract(from: number, to: number, cut: readonly [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  let p = from;
  for (const [s, e] of [...cut].sort((x, y) => x[0] - y[0])) {
    if (s > p) out.push([p, Math.min(s, to)]);
    p = Math.max(p, e);
  }
  if (p < to) out.push([p, to]);
  return out.filter(([s, e]) => e > s);
}
