// Durable writes: the bytes go to a temporary file beside the target, are fsync'd, renamed over the target,
// and the directory is fsync'd so that the rename itself survives a power loss. A reader therefore sees the
// old file, the new file or none, never a torn one. (write-file-atomic does all but the directory fsync.)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VslError, fileError } from './errors.js';

/** The temporary name of a write in progress: a dot file that no reader of `*.npy` / `*.json` picks up. */
export function tempNameFor(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`,
  );
}

/** Write `data` to `file` through a temporary file and a rename (not fsync'd); a failure names the file and the
 * cause, leaving `file` as it was. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tempNameFor(file);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw fileError(file, e, 'write');
  }
}

// mkdir -p one level at a time: Node 20's fs.mkdirSync(dir, { recursive: true }) never returns when the kernel
// answers ENOENT for a parent that exists (e.g. --model-name /proc/x loops forever); plain mkdirSync throws.
export function mkdirs(dir: string): void {
  if (fs.existsSync(dir)) return;
  const parent = path.dirname(dir);
  if (parent !== dir) mkdirs(parent);
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

export function isTempName(name: string): boolean {
  return name.startsWith('.') && /\.tmp-\d+-[0-9a-f]{8}$/.test(name);
}

/** fsync a directory (where the platform allows it: Windows cannot open a directory for it). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Write `chunks` to `file` atomically and durably (see the header); returns the sha256 of the bytes. */
export function writeFileDurable(file: string, chunks: readonly Uint8Array[]): string {
  const tmp = tempNameFor(file);
  const hash = crypto.createHash('sha256');
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) off += fs.writeSync(fd, c, off, c.length - off);
      hash.update(c);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
    fsyncDir(path.dirname(file));
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new VslError(`${file}: cannot write (${(e as Error).message})`);
  }
  return hash.digest('hex');
}

/** sha256 of a file, read in 8 MiB pieces. */
export function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(8 << 20);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw fileError(file, e);
  }
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
