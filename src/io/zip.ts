// Zip archives as torch.save writes them (stored entries, data descriptors, zip64 when large): the central
// directory and each entry's data, checked as far as the format allows: the end records agree with the central
// directory, each local header agrees with its central record (name, method, flags, and CRC and sizes, or the data
// descriptor's when the local header defers them), the data lies before the central directory, and the CRC-32 of
// every entry's data is the recorded one. zlib's crc32 is native (Node >= 20.15), so checking costs little.
import { crc32 } from 'node:zlib';
import { inflateSync } from 'fflate';
import { badInput, quote, type VslError } from '../util/errors.js';

/** One entry of a zip archive's central directory, with its data (a view on the archive when stored). */
export interface ZipEntry {
  name: string;
  method: number;
  data: Uint8Array;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_END = 0x06064b50;
const SIG_DESCRIPTOR = 0x08074b50;
const FLAG_ENCRYPTED = 0x1;
const FLAG_DESCRIPTOR = 0x8;
/** Deflate cannot expand data by more than ~1032:1; a larger claim is damage (and would allocate gigabytes). */
const MAX_DEFLATE_RATIO = 1032;

/** An entry as the central directory describes it. */
interface CentralRecord {
  index: number;
  name: string;
  nameBytes: Uint8Array;
  flags: number;
  method: number;
  crc: number;
  csize: number;
  usize: number;
  local: number;
}

class ZipReader {
  private readonly dv: DataView;
  private readonly len: number;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.len = bytes.byteLength;
  }

  bad(field: string, expected: string, found: string): VslError {
    return badInput(this.file, field, expected, found);
  }

  u16 = (p: number): number => this.dv.getUint16(p, true);
  u32 = (p: number): number => this.dv.getUint32(p, true);
  u64 = (p: number): number => Number(this.dv.getBigUint64(p, true));

  /** Where the central directory is, from the end record (and the zip64 one when present). */
  endRecords(): { count: number; cdOffset: number; cdSize: number; cdEnd: number } {
    const { len } = this;
    let eocd = -1;
    for (let p = len - 22; p >= Math.max(0, len - 22 - 0xffff); p--) {
      if (this.u32(p) === SIG_END) {
        eocd = p;
        break;
      }
    }
    if (eocd < 0)
      throw this.bad(
        'zip end of central directory',
        'the record at the end of the archive',
        `none in the last ${Math.min(len, 22 + 0xffff)} bytes (truncated file?)`,
      );
    const commentLen = this.u16(eocd + 20);
    if (eocd + 22 + commentLen !== len)
      throw this.bad(
        'zip end of central directory',
        `the end of the file after its ${commentLen}-byte comment (byte ${eocd + 22 + commentLen})`,
        `a ${len}-byte file (bytes appended or cut)`,
      );
    let count = this.u16(eocd + 10);
    let cdSize = this.u32(eocd + 12);
    let cdOffset = this.u32(eocd + 16);
    let cdEnd = eocd;
    if (eocd >= 20 && this.u32(eocd - 20) === SIG_ZIP64_LOCATOR) {
      const z64 = this.u64(eocd - 12);
      if (z64 + 56 > eocd - 20 || this.u32(z64) !== SIG_ZIP64_END)
        throw this.bad('zip64 end of central directory', `a record at byte ${z64}`, 'none (damaged archive)');
      count = this.u64(z64 + 32);
      cdSize = this.u64(z64 + 40);
      cdOffset = this.u64(z64 + 48);
      cdEnd = z64;
    }
    if (cdOffset + cdSize !== cdEnd)
      throw this.bad(
        'zip central directory',
        `bytes ${cdOffset}..${cdOffset + cdSize} ending where the end record starts (byte ${cdEnd})`,
        cdOffset + cdSize > cdEnd ? 'it runs past that (truncated or damaged)' : 'a gap before it (damaged)',
      );
    if (count > cdSize / 46) throw this.bad('zip central directory', `room for ${count} entries`, `${cdSize} bytes`);
    return { count, cdOffset, cdSize, cdEnd };
  }

  /**
   * The zip64 extended-information field inside extra bytes [from, to): replaces each 32-bit value that is
   * 0xFFFFFFFF, in the order the format fixes (original size, compressed size, local header offset).
   */
  zip64(from: number, to: number, where: string, values: number[]): number[] {
    const out = [...values];
    for (let e = from; e + 4 <= to;) {
      const id = this.u16(e);
      const sz = this.u16(e + 2);
      if (e + 4 + sz > to) throw this.bad(`${where} extra field`, `${sz} bytes at byte ${e + 4}`, 'a truncated field');
      if (id === 0x0001) {
        let q = e + 4;
        for (let k = 0; k < out.length; k++) {
          if (out[k] !== 0xffffffff) continue;
          if (q + 8 > e + 4 + sz) throw this.bad(`${where} zip64 field`, 'a complete field', `${sz} bytes`);
          out[k] = this.u64(q);
          q += 8;
        }
      }
      e += 4 + sz;
    }
    return out;
  }

  central(p: number, index: number): { rec: CentralRecord; next: number } {
    const where = `zip central directory entry ${index}`;
    if (p + 46 > this.len || this.u32(p) !== SIG_CENTRAL)
      throw this.bad(where, 'signature PK\\x01\\x02', `${quote(this.bytes.subarray(p, p + 4))} at byte ${p}`);
    const nameLen = this.u16(p + 28);
    const extraLen = this.u16(p + 30);
    const commentLen = this.u16(p + 32);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > this.len) throw this.bad(where, 'a complete record', 'a truncated one');
    const nameBytes = this.bytes.subarray(p + 46, p + 46 + nameLen);
    const name = new TextDecoder().decode(nameBytes);
    const [usize, csize, local] = this.zip64(p + 46 + nameLen, p + 46 + nameLen + extraLen, where, [
      this.u32(p + 24),
      this.u32(p + 20),
      this.u32(p + 42),
    ]);
    const rec = {
      index,
      name,
      nameBytes,
      flags: this.u16(p + 8),
      method: this.u16(p + 10),
      crc: this.u32(p + 16),
      csize: csize,
      usize: usize,
      local: local,
    };
    return { rec, next: end };
  }

  /** The entry's data, after checking its local header (and data descriptor) against the central record. */
  data(r: CentralRecord, cdOffset: number): Uint8Array {
    const where = `zip entry ${quote(r.name, 80)}`;
    const mismatch = (what: string, local: string | number, central: string | number): VslError =>
      this.bad(`${where} local header`, `the central directory's ${what} ${central}`, `${local} (damaged archive)`);
    if (r.flags & FLAG_ENCRYPTED) throw this.bad(where, 'an unencrypted entry', 'an encrypted one');
    const at = r.local;
    if (at + 30 > cdOffset || this.u32(at) !== SIG_LOCAL)
      throw this.bad(where, `a local header at byte ${at}`, 'none (truncated or damaged archive)');
    const flags = this.u16(at + 6);
    const method = this.u16(at + 8);
    const nameLen = this.u16(at + 26);
    const extraLen = this.u16(at + 28);
    const start = at + 30 + nameLen + extraLen;
    if (start > cdOffset) throw mismatch('name and extra lengths', `${nameLen} and ${extraLen}`, 'within the archive');
    const name = this.bytes.subarray(at + 30, at + 30 + nameLen);
    if (Buffer.compare(name, r.nameBytes) !== 0) throw mismatch('name', quote(name, 80), quote(r.nameBytes, 80));
    if (method !== r.method) throw mismatch('compression method', method, r.method);
    if ((flags ^ r.flags) & (FLAG_ENCRYPTED | FLAG_DESCRIPTOR)) throw mismatch('flags', flags, r.flags);
    if (start + r.csize > cdOffset)
      throw this.bad(where, `${r.csize} bytes of data at byte ${start}`, 'data running into the central directory');
    if (flags & FLAG_DESCRIPTOR) this.descriptor(r, start + r.csize, cdOffset, where);
    else {
      const crc = this.u32(at + 14);
      const [usize, csize] = this.zip64(at + 30 + nameLen, start, `${where} local header`, [
        this.u32(at + 22),
        this.u32(at + 18),
      ]);
      if (crc !== r.crc) throw mismatch('CRC-32', hex(crc), hex(r.crc));
      if (csize !== r.csize || usize !== r.usize)
        throw mismatch('sizes', `${csize}/${usize}`, `${r.csize}/${r.usize} (compressed/original)`);
    }
    const raw = this.bytes.subarray(start, start + r.csize);
    let data: Uint8Array;
    if (r.method === 0) {
      if (r.csize !== r.usize) throw this.bad(where, 'equal stored and original sizes', `${r.csize} and ${r.usize}`);
      data = raw;
    } else if (r.method === 8) {
      if (r.usize > MAX_DEFLATE_RATIO * r.csize + 1024)
        throw this.bad(where, `at most ${MAX_DEFLATE_RATIO}:1 expansion`, `${r.csize} bytes claiming ${r.usize}`);
      try {
        data = inflateSync(raw, { out: new Uint8Array(r.usize) });
      } catch (e) {
        throw this.bad(where, 'deflate data', `corrupt data (${(e as Error).message})`);
      }
      if (data.byteLength !== r.usize) throw this.bad(where, `${r.usize} inflated bytes`, `${data.byteLength}`);
    } else throw this.bad(where, 'compression method 0 (stored) or 8 (deflate)', `method ${r.method}`);
    const crc = crc32(data);
    if (crc !== r.crc) throw this.bad(where, `data with CRC-32 ${hex(r.crc)}`, `${hex(crc)} (the data is damaged)`);
    return data;
  }

  /** A data descriptor after the data: [signature] CRC-32, sizes (32-bit, or 64-bit in zip64), as recorded. */
  descriptor(r: CentralRecord, p: number, cdOffset: number, where: string): void {
    const at = p + 4 <= cdOffset && this.u32(p) === SIG_DESCRIPTOR ? p + 4 : p;
    const fits = (n: number): boolean => at + n <= cdOffset;
    const ok32 = fits(12) && this.u32(at) === r.crc && this.u32(at + 4) === r.csize && this.u32(at + 8) === r.usize;
    const ok64 = fits(20) && this.u32(at) === r.crc && this.u64(at + 4) === r.csize && this.u64(at + 12) === r.usize;
    if (!ok32 && !ok64)
      throw this.bad(
        `${where} data descriptor`,
        `CRC-32 ${hex(r.crc)} and sizes ${r.csize}/${r.usize} at byte ${at} (as the central directory)`,
        fits(12) ? `CRC-32 ${hex(this.u32(at))} and ${this.u32(at + 4)}/${this.u32(at + 8)}` : 'the end of the data',
      );
  }
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

/**
 * Read a zip archive's central directory (zip64 included) and return its entries by name, each checked (see the
 * header). Stored entries are views on `bytes`, not copies; deflated entries are inflated with fflate.
 */
export function readZip(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const z = new ZipReader(bytes, file);
  const { count, cdOffset, cdEnd } = z.endRecords();
  const records: CentralRecord[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    const { rec, next } = z.central(p, i);
    records.push(rec);
    p = next;
  }
  if (p !== cdEnd)
    throw z.bad('zip central directory', `${count} entries ending at byte ${cdEnd}`, `entries ending at byte ${p}`);
  const entries = new Map<string, ZipEntry>();
  for (const r of records) {
    if (entries.has(r.name)) throw z.bad('zip entries', 'unique names', `${quote(r.name, 80)} twice`);
    entries.set(r.name, { name: r.name, method: r.method, data: z.data(r, cdOffset) });
  }
  return entries;
}
