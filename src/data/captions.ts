// `<split>_caps.txt`: UTF-8 text, one caption per line, 5 lines per image (SCAN precomp layout).
import fs from 'node:fs';
import { badInput, fileError, VslError } from '../util/errors.js';

/** ASCII whitespace as Python's bytes.strip() removes it (space, \t, \n, \r, \v, \f). */
function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** Python `bytes.strip()` on the UTF-8 bytes of a line: only ASCII whitespace is removed. */
export function stripAscii(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isAsciiSpace(s.charCodeAt(a))) a++;
  while (b > a && isAsciiSpace(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Split caption-file text into captions the way the reference reads it (`for line in f: line.strip()` on a binary
 * file): lines end at '\n', a '\r' before it (CRLF) goes, and so does surrounding ASCII whitespace. Blank lines
 * at the very end of the file are dropped (a final newline, or a few stray ones); blank lines in between stay,
 * since they are captions as far as the line count is concerned.
 */
export function splitCaptions(text: string): string[] {
  const lines = text.split('\n');
  let n = lines.length;
  while (n > 0 && stripAscii(lines[n - 1]) === '') n--;
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = stripAscii(lines[i]);
  return out;
}

/** Read `<split>_caps.txt` (strict UTF-8). */
export function readCaptions(file: string): string[] {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw fileError(file, e);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    // Find the first bad line for the message.
    let line = 1;
    let start = 0;
    for (let i = 0; i <= buf.length; i++) {
      if (i === buf.length || buf[i] === 0x0a) {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(start, i));
        } catch {
          break;
        }
        line++;
        start = i + 1;
      }
    }
    throw badInput(file, `line ${line}`, 'UTF-8 text', 'bytes that are not valid UTF-8');
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return splitCaptions(text);
}

/**
 * Captions per image, as the reference decides it: 5 when the image count differs from the caption count, else 1.
 * Anything other than 5 captions per image or 1 per image is an error naming both counts and both files.
 */
export function imageDivisor(nImages: number, nCaptions: number, imagesFile: string, captionsFile: string): 1 | 5 {
  if (nCaptions === nImages) return 1;
  if (nCaptions === 5 * nImages) return 5;
  throw new VslError(
    `${captionsFile}: caption count: expected 5 per image (${5 * nImages} for the ${nImages} images of ${imagesFile}) or 1 per image, found ${nCaptions}`,
  );
}
