// Parts of a score matrix, one per shard: the rows as a float32 .npy and a JSON manifest beside it (what was
// scored: model file hash, data, split, protocol, rows; how: engine, backend, vsl version, workers, time). `merge`
// checks that the parts belong together and cover every row exactly once, then assembles the matrix; every
// refusal names the part and the field.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { VslError, badInput } from '../util/errors.js';
import { log } from '../util/log.js';
import { sha256File, writeFileDurable } from '../util/atomicFile.js';
import { vslVersion } from '../util/version.js';
import { encodeNpyHeader } from '../io/npyHeader.js';
import { readNpy } from '../io/npyRead.js';
import type { ModelSource } from './loadModel.js';
import type { ScoredSplit } from './scoreSplit.js';
import type { Shard } from './shards.js';

const PART_FORMAT = 'vsl-eval-part';

const int = z.number().int().nonnegative();
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits (sha256)');

const PartManifestSchema = z
  .object({
    format: z.literal(PART_FORMAT),
    version: z.literal(1),
    vsl: z.string(),
    /** absent in parts written before the onnx engine: those are tfjs */
    engine: z.enum(['onnx', 'tfjs']).optional(),
    backend: z.string(),
    model: z
      .object({ file: z.string(), sha256: hex64, module: z.string(), source: z.string(), epoch: z.number() })
      .strict(),
    data: z
      .object({
        dataPath: z.string(),
        dataName: z.string(),
        split: z.string(),
        vocab: z.string(),
        captionsSha256: hex64,
      })
      .strict(),
    protocol: z
      .object({
        fold5: z.boolean(),
        foldImages: int.positive().nullable(),
        imageBlock: int.positive(),
        captionBlock: int.positive(),
      })
      .strict(),
    matrix: z.object({ shape: z.array(int), rows: int.positive(), rowLength: int.positive() }).strict(),
    shard: z.object({ index: int, count: int.positive() }).strict(),
    rows: z.tuple([int, int]),
    part: z.object({ file: z.string(), shape: z.tuple([int, int]), sha256: hex64 }).strict(),
    run: z
      .object({
        workers: int.positive(),
        seconds: z.object({ encode: z.number(), score: z.number() }).strict(),
        pairsScored: int,
        blocks: z.object({ total: int, reused: int, scored: int }).strict(),
      })
      .strict(),
  })
  .strict();

export type PartManifest = z.infer<typeof PartManifestSchema>;

/** X.npy / X.json / X -> the two files of part X. */
function partFiles(name: string): { npy: string; manifest: string } {
  const stem = name.replace(/\.(npy|json)$/, '');
  return { npy: `${stem}.npy`, manifest: `${stem}.json` };
}

/** Write the rows of `s` as part `out` (X.npy + X.json; the manifest last, so that it marks a complete part). */
export function writePart(out: string, s: ScoredSplit, shard: Shard): { npy: string; manifest: string } {
  const { npy, manifest } = partFiles(out);
  const shape: [number, number] = [s.rows[1] - s.rows[0], s.rowLength];
  const sha256 = writeFileDurable(npy, [
    encodeNpyHeader(shape, '<f4'),
    new Uint8Array(s.scores.buffer, s.scores.byteOffset, s.scores.byteLength),
  ]);
  const m: PartManifest = {
    format: PART_FORMAT,
    version: 1,
    vsl: vslVersion(),
    engine: s.engine as 'onnx' | 'tfjs',
    backend: s.backend,
    model: { file: s.modelPath, sha256: s.modelSha256, module: s.module, source: s.source, epoch: s.epoch },
    data: {
      dataPath: s.dataPath,
      dataName: s.dataName,
      split: s.split,
      vocab: s.vocabFile,
      captionsSha256: s.captionsSha256,
    },
    protocol: {
      fold5: s.layout.fold5,
      foldImages: s.layout.foldImages ?? null,
      imageBlock: s.imageBlock,
      captionBlock: s.captionBlock,
    },
    matrix: { shape: s.shape, rows: s.layout.nImages, rowLength: s.rowLength },
    shard: { index: shard.index, count: shard.count },
    rows: [s.rows[0], s.rows[1]],
    part: { file: path.basename(npy), shape, sha256 },
    run: { workers: s.workers, seconds: s.seconds, pairsScored: s.pairsScored, blocks: s.blocks },
  };
  writeFileDurable(manifest, [Buffer.from(JSON.stringify(m, null, 2) + '\n')]);
  return { npy, manifest };
}

/** Read and check one manifest (its fields; not yet its rows' file). */
function readPartManifest(file: string): PartManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new VslError(`${file}: file not found (the manifest of a part written by vsl eval --out)`);
    throw new VslError(`${file}: expected a part manifest (JSON), found ${(e as Error).message}`);
  }
  const r = PartManifestSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    const field = i.code === 'unrecognized_keys' ? [...i.path, i.keys.join(', ')].join('.') : i.path.join('.');
    throw new VslError(`${file}: ${field || 'manifest'}: ${i.message}`);
  }
  const m = r.data;
  if (m.rows[0] >= m.rows[1] || m.rows[1] > m.matrix.rows)
    throw badInput(file, 'rows', `a range [start, end) within [0, ${m.matrix.rows}]`, `[${m.rows.join(', ')})`);
  if (m.part.shape[0] !== m.rows[1] - m.rows[0] || m.part.shape[1] !== m.matrix.rowLength)
    throw badInput(
      file,
      'part.shape',
      `(${m.rows[1] - m.rows[0]}, ${m.matrix.rowLength}) for rows [${m.rows.join(', ')})`,
      `(${m.part.shape.join(', ')})`,
    );
  return m;
}

/** The fields every part must share, as they read in a manifest. */
const MUST_AGREE: [string, (m: PartManifest) => unknown][] = [
  ['model.sha256', (m) => m.model.sha256],
  ['model.module', (m) => m.model.module],
  ['data.dataName', (m) => m.data.dataName],
  ['data.split', (m) => m.data.split],
  ['data.captionsSha256', (m) => m.data.captionsSha256],
  ['protocol.fold5', (m) => m.protocol.fold5],
  ['protocol.foldImages', (m) => m.protocol.foldImages],
  ['protocol.imageBlock', (m) => m.protocol.imageBlock],
  ['protocol.captionBlock', (m) => m.protocol.captionBlock],
  ['matrix.shape', (m) => m.matrix.shape.join(', ')],
  ['matrix.rowLength', (m) => m.matrix.rowLength],
];

export interface MergedParts {
  manifests: PartManifest[];
  files: string[];
  /** The whole matrix: (rows, rowLength), row-major = the shape in manifests[0].matrix.shape. */
  scores: Float32Array;
}

/** Check the parts (see the header) and assemble the matrix. */
export function mergeParts(names: readonly string[]): MergedParts {
  const stems = [...new Set(names.map((n) => partFiles(n).manifest))];
  if (stems.length === 0) throw new VslError('--merge: expected at least one part (X.npy or X.json)');
  const parts = stems.map((file) => ({ file, m: readPartManifest(file) }));
  const ref = parts[0];
  for (const p of parts.slice(1)) {
    for (const [field, get] of MUST_AGREE) {
      const want = get(ref.m);
      const got = get(p.m);
      if (got !== want)
        throw badInput(p.file, field, `${JSON.stringify(want)} (as in ${ref.file})`, JSON.stringify(got));
    }
    // parts of different engines merge (the scores agree to float rounding, ~1e-6), with this warning, and the
    // merged output names every engine (docs/onnx-engine.md)
    for (const [field, get] of [
      ['engine', (m: PartManifest) => m.engine ?? 'tfjs'],
      ['backend', (m: PartManifest) => m.backend],
      ['vsl', (m: PartManifest) => m.vsl],
    ] as const) {
      if (get(p.m) !== get(ref.m))
        log().warn(
          `${p.file}: ${field} ${get(p.m)} differs from ${ref.file}'s ${get(ref.m)}: the scores may differ in the last bits`,
        );
    }
  }
  const sorted = [...parts].sort((a, b) => a.m.rows[0] - b.m.rows[0]);
  let covered = 0;
  let prev: (typeof parts)[number] | undefined;
  for (const p of sorted) {
    const [s, e] = p.m.rows;
    if (s < covered)
      throw badInput(
        p.file,
        'rows',
        `rows from ${covered} on (${prev!.file} has [${prev!.m.rows.join(', ')}))`,
        `[${s}, ${e}): an overlap`,
      );
    if (s > covered)
      throw badInput(
        p.file,
        'rows',
        `rows from ${covered} on (${prev ? `after ${prev.file}` : 'the first part'})`,
        `[${s}, ${e}): rows [${covered}, ${s}) are in no part`,
      );
    covered = e;
    prev = p;
  }
  const N = ref.m.matrix.rows;
  if (covered < N)
    throw badInput(
      prev!.file,
      'rows',
      `parts up to row ${N}`,
      `[${prev!.m.rows.join(', ')}): rows [${covered}, ${N}) are in no part`,
    );
  const L = ref.m.matrix.rowLength;
  const scores = new Float32Array(N * L);
  for (const p of sorted) {
    const npy = path.join(path.dirname(p.file), p.m.part.file);
    const sha = sha256File(npy);
    if (sha !== p.m.part.sha256)
      throw badInput(p.file, 'part.sha256', `${p.m.part.sha256} (the sha256 of ${npy})`, `${sha}: the part is damaged`);
    const a = readNpy(npy);
    if (a.dtype !== '<f4' || a.shape.join(',') !== p.m.part.shape.join(','))
      throw badInput(
        npy,
        'shape',
        `float32 (${p.m.part.shape.join(', ')}) as ${p.file} says`,
        `${a.dtype} (${a.shape.join(', ')})`,
      );
    scores.set(a.data, p.m.rows[0] * L);
  }
  return { manifests: sorted.map((p) => p.m), files: sorted.map((p) => p.file), scores };
}

/** The merged matrix as a ScoredSplit (what evaluate.ts reports from), times summed over the parts. */
export function mergedSplit(mp: MergedParts): ScoredSplit {
  const m = mp.manifests[0];
  const sum = (get: (x: PartManifest) => number) => mp.manifests.reduce((s, x) => s + get(x), 0);
  return {
    modelPath: m.model.file,
    modelSha256: m.model.sha256,
    module: m.model.module,
    source: m.model.source as ModelSource,
    epoch: m.model.epoch,
    dataPath: m.data.dataPath,
    dataName: m.data.dataName,
    split: m.data.split,
    vocabFile: m.data.vocab,
    captionsSha256: m.data.captionsSha256,
    layout: {
      nImages: m.matrix.rows,
      fold5: m.protocol.fold5,
      ...(m.protocol.foldImages !== null ? { foldImages: m.protocol.foldImages } : {}),
    },
    nCaptions: m.protocol.fold5 ? 5 * m.matrix.rows : m.matrix.rowLength,
    rows: [0, m.matrix.rows],
    rowLength: m.matrix.rowLength,
    scores: mp.scores,
    shape: m.matrix.shape,
    imageBlock: m.protocol.imageBlock,
    captionBlock: m.protocol.captionBlock,
    workers: m.run.workers,
    engine: [...new Set(mp.manifests.map((x) => x.engine ?? 'tfjs'))].sort().join('+'),
    backend: m.backend,
    seconds: { encode: sum((x) => x.run.seconds.encode), score: sum((x) => x.run.seconds.score) },
    pairsScored: sum((x) => x.run.pairsScored),
    blocks: {
      total: sum((x) => x.run.blocks.total),
      reused: sum((x) => x.run.blocks.reused),
      scored: sum((x) => x.run.blocks.scored),
    },
    stopped: false,
    workDir: null,
  };
}
