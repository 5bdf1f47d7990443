// Whole-file writes that never leave a half-written file under the real name: the data goes to a temporary file in
// the same directory, which is renamed over the target only once complete (rename is atomic within a filesystem).
import fs from 'node:fs';
import path from 'node:path';
import { fileError } from './errors.js';

/** The temporary name for `file` while it is being written (same directory, so the rename stays atomic). */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}`);
}

/** Write `data` to `file` through a temporary file; a failure names the file and the cause, leaving `file` as it was. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(file);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw fileError(file, e, 'write');
  }
}
