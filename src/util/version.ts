// vsl's own version, from its package.json (recorded in evaluation parts and work directories).
import fs from 'node:fs';
import { anyToString } from './errors.js';

let cached: string | undefined;

export function vslVersion(): string {
  if (cached === undefined) {
    // dist/src/util/version.js and src/util/version.ts both sit three levels below the package root
    const file = new URL('../../../package.json', import.meta.url);
    const alt = new URL('../../package.json', import.meta.url);
    const text = fs.readFileSync(fs.existsSync(file) ? file : alt, 'utf8');
    cached = anyToString((JSON.parse(text) as { version?: unknown }).version ?? 'unknown');
  }
  return cached;
}
