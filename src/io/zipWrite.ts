// A zip archive of stored (uncompressed) entries whose data start on 64-byte boundaries, as torch.save writes
// its container (PyTorchStreamWriter pads each local header with an extra field of id "FB" so that a storage
// can be used in place, e.g. by torch.load(mmap=True)). fflate writes the archive (headers, CRC-32, central
// directory); this module only works out each entry's padding.
import { zipSync, type Zippable } from 'fflate';

export interface ZipEntry {
  name: string;
  data: Uint8Array;
}

/** torch's padding extra field id: the bytes "FB" read little-endian. */
const PAD_ID = 0x4246;
const LOCAL_HEADER = 30;
const EXTRA_HEADER = 4;
/** A fixed time stamp, so that the same entries give the same bytes (DOS dates start in 1980). */
const MTIME = new Date(1980, 0, 1, 0, 0, 0);

/**
 * The archive of `entries`, in order, every entry stored with its data at a multiple of `align` bytes from the
 * start of the archive. Names must be ASCII (torch's are).
 */
export function storedZip(entries: readonly ZipEntry[], align = 64): Uint8Array {
  const files: Zippable = {};
  let offset = 0;
  for (const e of entries) {
    if (!/^[\x20-\x7e]+$/.test(e.name)) throw new Error(`zip entry name ${JSON.stringify(e.name)}: expected ASCII`);
    if (e.name in files) throw new Error(`zip entry ${e.name}: listed twice`);
    const headerEnd = offset + LOCAL_HEADER + e.name.length;
    let pad = (align - (headerEnd % align)) % align;
    if (pad > 0 && pad < EXTRA_HEADER) pad += align; // an extra field is at least its 4-byte header
    const extra = pad > 0 ? { [PAD_ID]: new Uint8Array(pad - EXTRA_HEADER) } : undefined;
    files[e.name] = [e.data, { level: 0, mtime: MTIME, ...(extra ? { extra } : {}) }];
    offset = headerEnd + pad + e.data.length;
  }
  return zipSync(files);
}
