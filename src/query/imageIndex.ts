// An image index (`vsl index`): a split's image side, encoded once by one checkpoint, so that `vsl query
// --index` and `vsl serve` skip the image encoding. SGRAF's cross-attention scores cannot use a vector index
// (every query scores every image); what can be kept is everything the score needs from the images:
//
//   IDX/regions.npy    float32 (n, 36, D)  the encoded regions
//   IDX/vglobal.npy    float32 (n, D)      VisualSA's global vector
//   IDX/manifest.json  what it was built from: the checkpoint's sha256, data name, split, the captions' sha256,
//                      image count, model config, vsl version, the backend that encoded, format version
//
// The folder is written beside its final name and renamed into place, so a failed build leaves no index, and an
// older index at that name is replaced only once the new one is complete. An index is used only by the checkpoint
// and split it was built from: every mismatch is a one-line error naming manifest.json and the field.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { badInput, fileError, VslError } from '../util/errors.js';
import { fsyncDir, mkdirs, tempNameFor, writeFileDurable } from '../util/atomicFile.js';
import { createNpyWriter, type NpyWriter } from '../io/npyWrite.js';
import { openNpy } from '../io/npyRead.js';
import { REGIONS, type ModelConfig } from '../model/config.js';
import { sharedFloat32 } from '../ops/shared.js';
import type { EncodedImages } from '../runtime/encode.js';

const INDEX_FORMAT = 'vsl-image-index';
const INDEX_VERSION = 1;
const MANIFEST = 'manifest.json';
const REGIONS_FILE = 'regions.npy';
const VGLOBAL_FILE = 'vglobal.npy';

const int = z.number().int().nonnegative();
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits (sha256)');

const ManifestSchema = z.object({
  format: z.literal(INDEX_FORMAT),
  version: z.literal(INDEX_VERSION),
  vsl: z.string(),
  created: z.string(),
  /** what computed the encodings (another engine scores them equally, up to float rounding) */
  encodedWith: z.string(),
  model: z.object({
    file: z.string(),
    sha256: hex64,
    module: z.string(),
    source: z.string(),
    epoch: z.number(),
    config: z.object({ module: z.string(), imgDim: int, embedSize: int.positive() }).passthrough(),
  }),
  data: z.object({
    dataPath: z.string(),
    dataName: z.string(),
    split: z.string(),
    vocab: z.string(),
    captionsSha256: hex64,
    nImages: int.positive(),
    nCaptions: int.positive(),
  }),
  arrays: z.object({
    regions: z.object({ file: z.literal(REGIONS_FILE), shape: z.tuple([int, int, int]) }),
    vGlobal: z.object({ file: z.literal(VGLOBAL_FILE), shape: z.tuple([int, int]) }),
  }),
  seconds: z.object({ encode: z.number() }),
});

export type IndexManifest = z.infer<typeof ManifestSchema>;
/** What the builder knows before it writes: the arrays' part follows from the counts and the dims. */
export type IndexIdentity = Omit<IndexManifest, 'format' | 'version' | 'arrays' | 'seconds'>;

/** An index folder that may be replaced: absent, empty, or a vsl index (never another folder of the user's). */
function checkReplaceable(dir: string): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw badInput(dir, '--out', 'a folder for the index', 'a file');
  const entries = fs.readdirSync(dir);
  if (entries.length === 0) return;
  const m = path.join(dir, MANIFEST);
  let format: unknown;
  try {
    format = (JSON.parse(fs.readFileSync(m, 'utf8')) as { format?: unknown }).format;
  } catch {
    format = undefined;
  }
  if (format !== INDEX_FORMAT)
    throw badInput(dir, '--out', 'a new folder, an empty one or an older vsl index to replace', 'another folder');
}

export interface IndexWriter {
  /** Append the encodings of the next images (in row order). */
  append(img: EncodedImages): void;
  /** Write the manifest and move the folder into place. */
  finish(seconds: number): IndexManifest;
  /** Give up: remove everything written. */
  abort(): void;
}

/** Start writing an index of `nImages` images into a temporary folder beside `dir` (see the header). */
export function createIndexWriter(dir: string, id: IndexIdentity, config: ModelConfig): IndexWriter {
  checkReplaceable(dir);
  mkdirs(path.dirname(path.resolve(dir)));
  const tmp = tempNameFor(path.resolve(dir));
  try {
    fs.mkdirSync(tmp);
  } catch (e) {
    throw fileError(dir, e, 'create');
  }
  const n = id.data.nImages;
  const D = config.embedSize;
  const arrays: IndexManifest['arrays'] = {
    regions: { file: REGIONS_FILE, shape: [n, REGIONS, D] },
    vGlobal: { file: VGLOBAL_FILE, shape: [n, D] },
  };
  const writers: NpyWriter[] = [];
  const abort = () => {
    for (const w of writers) w.abort();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    writers.push(createNpyWriter(path.join(tmp, REGIONS_FILE), arrays.regions.shape));
    writers.push(createNpyWriter(path.join(tmp, VGLOBAL_FILE), arrays.vGlobal.shape));
  } catch (e) {
    abort();
    throw e;
  }
  const [regions, vGlobal] = writers;
  return {
    append(img) {
      try {
        regions.append(img.regions);
        vGlobal.append(img.vGlobal);
      } catch (e) {
        abort();
        throw e;
      }
    },
    finish(seconds) {
      const m: IndexManifest = {
        format: INDEX_FORMAT,
        version: INDEX_VERSION,
        ...id,
        arrays,
        seconds: { encode: seconds },
      };
      try {
        regions.close();
        vGlobal.close();
        writeFileDurable(path.join(tmp, MANIFEST), [Buffer.from(JSON.stringify(m, null, 2) + '\n')]);
        fsyncDir(tmp);
        checkReplaceable(dir);
        // an older index moves aside first: a reader sees the old folder or the new one, never half of one
        const old = fs.existsSync(dir) ? tempNameFor(path.resolve(dir)) : undefined;
        if (old) fs.renameSync(dir, old);
        fs.renameSync(tmp, dir);
        if (old) fs.rmSync(old, { recursive: true, force: true });
        fsyncDir(path.dirname(path.resolve(dir)));
      } catch (e) {
        abort();
        throw e instanceof VslError ? e : fileError(dir, e, 'write');
      }
      return m;
    },
    abort,
  };
}

/** Read and check an index's manifest (its fields; the arrays are checked when read). */
export function readIndexManifest(dir: string): IndexManifest {
  const file = path.join(dir, MANIFEST);
  if (!fs.existsSync(dir)) throw new VslError(`${dir}: index not found (build one with vsl index)`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new VslError(`${file}: file not found (the manifest of an index written by vsl index)`);
    throw badInput(file, 'manifest', 'an index manifest (JSON)', (e as Error).message);
  }
  const r = ManifestSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new VslError(`${file}: ${i.path.join('.') || 'manifest'}: ${i.message}`);
  }
  return r.data;
}

/** What the caller is about to use the index with; each is compared with the manifest. */
export interface IndexExpectation {
  modelFile: string;
  modelSha256: string;
  config: ModelConfig;
  dataName: string;
  split: string;
  captionsSha256: string;
  nImages: number;
}

/** Refuse an index built from another checkpoint, data, split or dims, naming the field. */
export function checkIndex(dir: string, m: IndexManifest, x: IndexExpectation): void {
  const file = path.join(dir, MANIFEST);
  const short = (h: string) => h.slice(0, 12);
  if (m.model.sha256 !== x.modelSha256)
    throw badInput(
      file,
      'model.sha256',
      `${short(x.modelSha256)}... (the checkpoint ${x.modelFile})`,
      `${short(m.model.sha256)}... (built from ${m.model.file}; build the index again with vsl index)`,
    );
  const same: [string, unknown, unknown][] = [
    ['data.dataName', x.dataName, m.data.dataName],
    ['data.split', x.split, m.data.split],
    ['data.captionsSha256', x.captionsSha256, m.data.captionsSha256],
    ['data.nImages', x.nImages, m.data.nImages],
    ['model.config.module', x.config.module, m.model.config.module],
    ['model.config.embedSize', x.config.embedSize, m.model.config.embedSize],
    ['model.config.imgDim', x.config.imgDim, m.model.config.imgDim],
  ];
  for (const [field, want, got] of same)
    if (want !== got) throw badInput(file, field, JSON.stringify(want), JSON.stringify(got));
  const D = x.config.embedSize;
  const shapes: [string, readonly number[], readonly number[]][] = [
    ['arrays.regions.shape', [x.nImages, REGIONS, D], m.arrays.regions.shape],
    ['arrays.vGlobal.shape', [x.nImages, D], m.arrays.vGlobal.shape],
  ];
  for (const [field, want, got] of shapes)
    if (want.join() !== got.join()) throw badInput(file, field, `(${want.join(', ')})`, `(${got.join(', ')})`);
}

/** The index's arrays in shared memory (the score workers read them in place); shapes as the manifest says. */
export function readIndexImages(dir: string, m: IndexManifest): EncodedImages {
  const read = (name: string, shape: readonly number[]) => {
    const h = openNpy(path.join(dir, name));
    try {
      if (h.dtype !== '<f4' || h.shape.join() !== shape.join())
        throw badInput(
          h.path,
          'header',
          `'<f4' of shape (${shape.join(', ')})`,
          `'${h.dtype}' of shape (${h.shape.join(', ')})`,
        );
      const out = sharedFloat32(shape.reduce((a, b) => a * b, 1));
      h.readRows(0, h.nRows, out);
      return out;
    } finally {
      h.close();
    }
  };
  return {
    n: m.data.nImages,
    regions: read(m.arrays.regions.file, m.arrays.regions.shape),
    vGlobal: read(m.arrays.vGlobal.file, m.arrays.vGlobal.shape),
  };
}
