// Errors that users should see as one clear line (file, field, what was expected, what was found).
// The CLI prints `vsl: <message>` for these and exits non-zero; any other error keeps its stack.

/** Longest message a VslError keeps: a message is one terminal line or a few, never a dump. */
export const MAX_MESSAGE_CHARS = 1000;

export class VslError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(oneLine(message));
    this.name = 'VslError';
    this.exitCode = exitCode;
  }
}

/**
 * A message as one printable, bounded line: line breaks become spaces, other control characters and unpaired
 * surrogates are escaped (\xNN, \uNNNN), and anything past MAX_MESSAGE_CHARS is cut with a note. Messages quote
 * bytes from input files, which may hold anything.
 */
export function oneLine(message: string): string {
  let out = message.replace(/\r\n|[\r\n]/g, ' ');
  // C0/C1 controls, DEL, unpaired surrogates, U+2028/2029 (line breaks to some terminals)
  out = out.replace(
    // eslint-disable-next-line no-control-regex -- these are the characters it escapes
    /[\x00-\x1f\x7f-\x9f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    (c) => {
      const n = c.charCodeAt(0);
      return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
    },
  );
  if (out.length > MAX_MESSAGE_CHARS) {
    const cut = MAX_MESSAGE_CHARS - 40;
    out = `${out.slice(0, cut)}... (${out.length - cut} more characters)`;
  }
  return out;
}

/**
 * String(v), on purpose, for a value of any type read from input (an attribute, an unpickled object, a log
 * record's field): a string as itself, a number or array as String writes it, an object as "[object Object]".
 */
export function anyToString(v: unknown): string {
  return String(v);
}

/**
 * A short excerpt of input bytes or text for an error message: at most `max` characters, printable ASCII kept,
 * everything else escaped, in double quotes, with "..." when cut.
 */
export function quote(input: Uint8Array | string, max = 32): string {
  const n = input.length;
  let s = '';
  for (let i = 0; i < Math.min(n, max); i++) {
    const c = typeof input === 'string' ? input.charCodeAt(i) : input[i];
    if (c === 0x22 || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else if (c < 0x100) s += `\\x${c.toString(16).padStart(2, '0')}`;
    else s += `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return `"${s}"${n > max ? '...' : ''}`;
}

/** What the system said, by error code, in the words users search for. */
const CAUSES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EISDIR: 'is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  EMFILE: 'too many open files',
  EFBIG: 'file too large',
  EIO: 'input/output error',
  EXDEV: 'cross-device rename',
};

/**
 * Error codes by the C library's message, as HDF5 (inside h5wasm) reports a failed system call: "errno = N, error
 * message = 'No space left on device'" (N is Emscripten's numbering, not the host's, so the text is what to read).
 */
const STRERROR_CODES: Record<string, string> = {
  'no such file or directory': 'ENOENT',
  'no space left on device': 'ENOSPC',
  'disk quota exceeded': 'EDQUOT',
  'quota exceeded': 'EDQUOT',
  'permission denied': 'EACCES',
  'operation not permitted': 'EPERM',
  'read-only file system': 'EROFS',
  'is a directory': 'EISDIR',
  'not a directory': 'ENOTDIR',
  'file too large': 'EFBIG',
  'i/o error': 'EIO',
  'input/output error': 'EIO',
};

/** The system error code of `e` (Node's `code`, or the C library message in an HDF5 error), if any. */
export function systemCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  const m = /error message = '([^']*)'/.exec(e instanceof Error ? e.message : String(e));
  return m ? STRERROR_CODES[m[1].toLowerCase()] : undefined;
}

/** "no space left on device (ENOSPC)" for a system error, else the error's own first line. */
export function systemCause(e: unknown): string {
  const code = systemCode(e);
  if (code) return `${CAUSES[code] ?? 'system error'} (${code})`;
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0];
}

/**
 * A file that could not be opened, read or written: "file not found", or the cause by name ("cannot write: no
 * space left on device (ENOSPC)").
 */
export function fileError(
  file: string,
  e: unknown,
  verb: 'read' | 'open' | 'write' | 'create' | 'rename' = 'read',
): VslError {
  if (e instanceof VslError) return e;
  const code = systemCode(e);
  if (code === 'ENOENT' && (verb === 'read' || verb === 'open')) return new VslError(`${file}: file not found`);
  return new VslError(`${file}: cannot ${verb}: ${systemCause(e)}`);
}

/** A file's content is not what vsl expects: names the file, the field and both sides. */
export function badInput(file: string, field: string, expected: string, found: string): VslError {
  return new VslError(`${file}: ${field}: expected ${expected}, found ${found}`);
}
