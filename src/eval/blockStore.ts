// The finished blocks of an evaluation, kept on disk as it goes so that the same command run again scores only
// what is missing. A work directory holds manifest.json (what is being evaluated: model hash, data, split,
// protocol, backend, vsl version) and one float32 .npy per finished block, `rows-<start>-<end>.npy`, of shape
// (rows, row length). Every file is written durably (atomicFile.ts): a SIGKILL or a power loss loses at most
// the blocks in flight, and a torn file never carries a block's name. A directory made for another evaluation
// is refused with the field that differs; a block file that does not read back as the shape it must have is
// dropped and scored again.
import fs from 'node:fs';
import path from 'node:path';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { isTempName, mkdirs, writeFileDurable } from '../util/atomicFile.js';
import { encodeNpyHeader } from '../io/npyHeader.js';
import { readNpy } from '../io/npyRead.js';
import type { Block } from './shards.js';

const WORK_FORMAT = 'vsl-eval-work';
const MANIFEST = 'manifest.json';

/** Identity fields added after the first work directories were written: their value in those (tfjs only then). */
const ADDED_LATER: Identity = { engine: 'tfjs' };

/** What a work directory's blocks are scores of: flat `field: value` pairs, compared one by one. */
export type Identity = Record<string, string | number | boolean | null>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export class BlockStore {
  private constructor(
    readonly dir: string,
    private readonly rowLength: number,
  ) {}

  /** Open (or start) the work directory of the evaluation `identity`; refuse one made for another. */
  static open(dir: string, identity: Identity, rowLength: number): BlockStore {
    const file = path.join(dir, MANIFEST);
    try {
      mkdirs(dir);
    } catch (e) {
      throw new VslError(`${dir}: cannot create the work directory (${(e as Error).message})`);
    }
    if (fs.existsSync(file)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        throw new VslError(`${file}: expected a vsl work-directory manifest (JSON), found ${(e as Error).message}`);
      }
      const found: { format?: unknown; identity?: unknown } = isObject(parsed) ? parsed : {};
      if (found.format !== WORK_FORMAT)
        throw new VslError(`${file}: format: expected "${WORK_FORMAT}", found ${JSON.stringify(found.format)}`);
      const ids: Record<string, unknown> = isObject(found.identity) ? found.identity : {};
      for (const [k, want] of Object.entries(identity)) {
        const got = k in ids ? ids[k] : ADDED_LATER[k];
        if (got !== want) {
          throw new VslError(
            `${file}: ${k}: expected ${JSON.stringify(want)} (this evaluation), found ${JSON.stringify(got)}; ` +
              `the directory holds blocks of another evaluation: remove it to start over, or pass another --work-dir` +
              (k === 'engine' ? ` (or continue it with --engine ${String(got)})` : ''),
          );
        }
      }
    } else {
      const text = JSON.stringify({ format: WORK_FORMAT, identity, created: new Date().toISOString() }, null, 2);
      writeFileDurable(file, [Buffer.from(text + '\n')]);
    }
    return new BlockStore(dir, rowLength);
  }

  /** A work directory this process opened before (no identity check). */
  static reopen(dir: string, rowLength: number): BlockStore {
    return new BlockStore(dir, rowLength);
  }

  fileOf(b: Block): string {
    return path.join(this.dir, `rows-${b.rows[0]}-${b.rows[1]}.npy`);
  }

  /** The stored scores of `b`, or null when it was not finished (or its file is damaged: then it is removed). */
  read(b: Block): Float32Array | null {
    const file = this.fileOf(b);
    if (!fs.existsSync(file)) return null;
    const shape = [b.rows[1] - b.rows[0], this.rowLength];
    try {
      const a = readNpy(file);
      if (a.dtype !== '<f4' || a.shape.join(',') !== shape.join(',') || a.data.length !== shape[0] * shape[1]) {
        throw new VslError(`expected float32 (${shape.join(', ')}), found ${a.dtype} (${a.shape.join(', ')})`);
      }
      return a.data;
    } catch (e) {
      log().warn(`${file}: damaged block (${(e as Error).message}); scoring it again`);
      fs.rmSync(file, { force: true });
      return null;
    }
  }

  /** Keep the scores of `b` (durably; the previous content of the file, if any, is replaced whole). */
  write(b: Block, scores: Float32Array): void {
    const rows = b.rows[1] - b.rows[0];
    if (scores.length !== rows * this.rowLength)
      throw new VslError(`block ${b.rows.join('-')}: expected ${rows * this.rowLength} scores, found ${scores.length}`);
    writeFileDurable(this.fileOf(b), [
      encodeNpyHeader([rows, this.rowLength], '<f4'),
      new Uint8Array(scores.buffer, scores.byteOffset, scores.byteLength),
    ]);
  }

  /**
   * Remove `blocks` once their scores are kept elsewhere; the directory goes too when nothing else is left in it
   * (another shard may share it; temporary files of crashed writes are not worth keeping it for).
   */
  removeBlocks(blocks: readonly Block[]): void {
    for (const b of blocks) fs.rmSync(this.fileOf(b), { force: true });
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    if (names.every((n) => n === MANIFEST || isTempName(n))) {
      for (const n of names) fs.rmSync(path.join(this.dir, n), { force: true });
      try {
        fs.rmdirSync(this.dir);
      } catch {
        // another process wrote into it meanwhile: leave it
      }
    }
  }
}
