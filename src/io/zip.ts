// Zip archives as torch.save writes them (stored entries, zip64 when large): the central directory and each
// entry's data.
import { inflateSync } from 'fflate';
import { badInput } from '../util/errors.js';

/** One entry of a zip archive's central directory, with its data (a view on the archive when stored). */
export interface ZipEntry {
  name: string;
  method: number;
  data: Uint8Array;
}

/**
 * Read a zip archive's central directory (zip64 included) and return its entries by name. Stored entries are
 * views on `bytes`, not copies; deflated entries are inflated with fflate.
 */
export function readZip(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.byteLength;
  let eocd = -1;
  for (let p = len - 22; p >= Math.max(0, len - 22 - 0xffff); p--) {
    if (dv.getUint32(p, true) === 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0)
    throw badInput(
      file,
      'zip end of central directory',
      'the record at the end of the archive',
      `none in the last ${Math.min(len, 22 + 0xffff)} bytes (truncated file?)`,
    );
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if (eocd >= 20 && dv.getUint32(eocd - 20, true) === 0x07064b50) {
    const z64 = Number(dv.getBigUint64(eocd - 12, true));
    if (z64 + 56 > len || dv.getUint32(z64, true) !== 0x06064b50)
      throw badInput(
        file,
        'zip64 end of central directory',
        `a record at byte ${z64}`,
        'none (truncated or malformed archive)',
      );
    count = Number(dv.getBigUint64(z64 + 32, true));
    cdSize = Number(dv.getBigUint64(z64 + 40, true));
    cdOffset = Number(dv.getBigUint64(z64 + 48, true));
  }
  if (cdOffset + cdSize > len)
    throw badInput(
      file,
      'zip central directory',
      `bytes ${cdOffset}..${cdOffset + cdSize}`,
      `a ${len}-byte file (truncated)`,
    );
  const entries = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > len || dv.getUint32(p, true) !== 0x02014b50)
      throw badInput(file, `zip central directory entry ${i}`, 'signature PK\\x01\\x02', `something else at byte ${p}`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    let csize = dv.getUint32(p + 20, true);
    let usize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let local = dv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen > len)
      throw badInput(file, `zip central directory entry ${i}`, 'a complete record', 'a truncated one');
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: the 64-bit values present are those whose 32-bit field is 0xFFFFFFFF
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = dv.getUint16(e, true);
      const sz = dv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + sz)
            throw badInput(file, `zip entry ${name}`, 'a complete zip64 extra field', 'a short one');
          const v = Number(dv.getBigUint64(q, true));
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take();
        if (csize === 0xffffffff) csize = take();
        if (local === 0xffffffff) local = take();
      }
      e += 4 + sz;
    }
    p += 46 + nameLen + extraLen + commentLen;
    if (flags & 1) throw badInput(file, `zip entry ${name}`, 'an unencrypted entry', 'an encrypted one');
    if (local + 30 > len || dv.getUint32(local, true) !== 0x04034b50)
      throw badInput(
        file,
        `zip entry ${name}`,
        `a local header at byte ${local}`,
        'none (truncated or malformed archive)',
      );
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    if (start + csize > len)
      throw badInput(
        file,
        `zip entry ${name}`,
        `${csize} bytes of data at byte ${start}`,
        `only ${Math.max(0, len - start)} (truncated file)`,
      );
    const raw = bytes.subarray(start, start + csize);
    let data: Uint8Array;
    if (method === 0) {
      if (csize !== usize)
        throw badInput(file, `zip entry ${name}`, 'equal stored and original sizes', `${csize} and ${usize}`);
      data = raw;
    } else if (method === 8) data = inflateSync(raw, { out: new Uint8Array(usize) });
    else throw badInput(file, `zip entry ${name}`, 'compression method 0 (stored) or 8 (deflate)', `method ${method}`);
    entries.set(name, { name, method, data });
  }
  return entries;
}
