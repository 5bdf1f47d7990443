// Errors that users should see as one clear line (file, field, what was expected, what was found).
// The CLI prints `vsl: <message>` for these and exits non-zero; any other error keeps its stack.
export class VslError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'VslError';
    this.exitCode = exitCode;
  }
}

/** A file that could not be opened or read: "file not found", or what the system said. */
export function fileError(file: string, e: unknown, verb: 'read' | 'open' = 'read'): VslError {
  const err = e as NodeJS.ErrnoException;
  return new VslError(err.code === 'ENOENT' ? `${file}: file not found` : `${file}: cannot ${verb} (${err.message})`);
}

/** A file's content is not what vsl expects: names the file, the field and both sides. */
export function badInput(file: string, field: string, expected: string, found: string): VslError {
  return new VslError(`${file}: ${field}: expected ${expected}, found ${found}`);
}
