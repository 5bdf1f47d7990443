// Byte-level helpers shared by the binary readers and writers (.npy, torch storages, numpy scalars): the host's
// byte order, IEEE half precision both ways, and latin-1 strings as bytes.

/** True on a little-endian host: typed-array views over little-endian file bytes need no byte swap. */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE half bits -> number (exact: every half is a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

let halfTable: Float32Array | null = null;

/** All 65536 halves as float32, indexed by their bits (a table lookup beats the arithmetic in hot loops). */
export function halfTableF32(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** float32 value -> IEEE half bits, round to nearest even (for the writers). */
export function toHalfBits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let hm = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && hm & 1)) hm++;
    return sign | hm;
  }
  let hm = mant >>> 13;
  const rem = mant & 0x1fff;
  let he = e;
  if (rem > 0x1000 || (rem === 0x1000 && hm & 1)) {
    hm++;
    if (hm === 0x400) {
      hm = 0;
      he++;
      if (he >= 31) return sign | 0x7c00;
    }
  }
  return sign | (he << 10) | hm;
}

/** The bytes of a string whose characters are all latin-1 (code points < 256), or null if one is not. */
export function latin1Bytes(s: string): Uint8Array | null {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) return null;
    b[i] = c;
  }
  return b;
}
