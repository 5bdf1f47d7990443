// The pictures of `vsl serve --images DIR --image-names FILE`: line r of FILE names the picture of image row r,
// a path relative to DIR (COCO's or Flickr30K's file names). Only those files are ever served, and only when
// they stay inside DIR: a name that is absolute, climbs out with "..", or whose real path (symlinks followed)
// leaves DIR is refused at start (said once, with the count) and again at each request, since files may change.
// Only picture types a browser shows as a picture are served (no SVG: it may carry script).
import fs from 'node:fs';
import path from 'node:path';
import { badInput, fileError, VslError } from '../util/errors.js';
import { log } from '../util/log.js';

const TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.bmp': 'image/bmp',
  '.avif': 'image/avif',
};

export interface PictureFile {
  file: string;
  type: string;
  size: number;
}

export class Pictures {
  private constructor(
    private readonly dir: string,
    /** row -> name, or null where the name was refused */
    private readonly names: (string | null)[],
  ) {}

  /** No pictures (precomp features only): the captions stand in. */
  static none(): Pictures {
    return new Pictures('', []);
  }

  static open(dir: string, namesFile: string, nImages: number): Pictures {
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch (e) {
      throw fileError(dir, e, 'open');
    }
    if (!fs.statSync(real).isDirectory()) throw badInput(dir, '--images', 'a folder of pictures', 'a file');
    let text: string;
    try {
      text = fs.readFileSync(namesFile, 'utf8');
    } catch (e) {
      throw fileError(namesFile, e);
    }
    const lines = text.split(/\r?\n/);
    if (lines.at(-1) === '') lines.pop();
    if (lines.length !== nImages)
      throw badInput(
        namesFile,
        'lines',
        `${nImages} picture names, one per image row of the split`,
        `${lines.length} lines`,
      );
    const p = new Pictures(real, []);
    let refused = 0;
    let firstRefused = '';
    for (const [r, raw] of lines.entries()) {
      const name = raw.trim();
      const ok = name !== '' && p.inside(name) !== null;
      if (!ok && refused++ === 0) firstRefused = `line ${r + 1}: ${JSON.stringify(name)}`;
      p.names.push(ok ? name : null);
    }
    if (refused > 0)
      log().warn(
        `${namesFile}: ${refused} of ${nImages} names are not picture files inside ${dir} (.jpg, .png, ...) and will not be served, e.g. ${firstRefused}`,
      );
    return p;
  }

  /** The resolved path of `name` when it is a picture file inside the folder, else null. */
  private inside(name: string): string | null {
    if (path.isAbsolute(name) || name.includes('\0') || !(path.extname(name).toLowerCase() in TYPES)) return null;
    const full = path.resolve(this.dir, name);
    if (!this.contains(full)) return null;
    let real: string;
    try {
      real = fs.realpathSync(full);
    } catch {
      return null; // missing: nothing to serve
    }
    return this.contains(real) ? real : null;
  }

  private contains(p: string): boolean {
    const rel = path.relative(this.dir, p);
    return rel !== '' && rel !== '..' && !rel.startsWith('..' + path.sep) && !path.isAbsolute(rel);
  }

  get count(): number {
    return this.names.filter((n) => n !== null).length;
  }

  /** The URL of row r's picture, or null. */
  url(r: number): string | null {
    return this.names[r] ? `/images/${r}` : null;
  }

  /** Row r's file, checked again now (it may have been moved or replaced by a link since the start). */
  file(r: number): PictureFile | null {
    const name = this.names[r];
    if (!name) return null;
    const real = this.inside(name);
    if (!real) return null;
    const st = fs.statSync(real, { throwIfNoEntry: false });
    if (!st?.isFile()) return null;
    return { file: real, type: TYPES[path.extname(name).toLowerCase()], size: st.size };
  }
}

/** Both options or neither. */
export function openPictures(dir: string | undefined, names: string | undefined, nImages: number): Pictures {
  if ((dir === undefined) !== (names === undefined))
    throw new VslError('--images and --image-names go together: the folder and the file of names, one per image row');
  return dir !== undefined && names !== undefined ? Pictures.open(dir, names, nImages) : Pictures.none();
}
