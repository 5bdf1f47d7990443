// Preloaded with `node --import` into a vsl process to simulate a full disk without one: every write to a file
// whose path starts with VSL_FAIL_WRITES_UNDER fails with ENOSPC, as write(2) does on a full filesystem. fs.openSync
// is wrapped to learn which descriptors those are; h5wasm's file driver writes through the same fs module.
import fs from 'node:fs';

const prefix = process.env.VSL_FAIL_WRITES_UNDER;
if (prefix) {
  const doomed = new Set<number>();
  const open = fs.openSync;
  const write = fs.writeSync;
  const close = fs.closeSync;
  fs.openSync = (p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (open as (...a: unknown[]) => number)(p, ...rest);
    if (String(p).startsWith(prefix)) doomed.add(fd);
    return fd;
  };
  fs.closeSync = (fd: number) => {
    doomed.delete(fd);
    return close(fd);
  };
  fs.writeSync = (fd: number, ...rest: unknown[]) => {
    if (doomed.has(fd)) {
      const e = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException;
      e.code = 'ENOSPC';
      e.errno = -28;
      throw e;
    }
    return (write as (...a: unknown[]) => number)(fd, ...rest);
  };
}
