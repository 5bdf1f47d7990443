// Evaluation on ONNX Runtime: the three graphs of a model (graphs.ts) in three sessions, with the functions of
// src/eval that they can stand in for, on the same host layouts:
//   encodeImages        ~ runtime/encode.ts encodeImages        -> EncodedImages   (shared memory)
//   encodeCaptionTokens ~ runtime/encode.ts encodeCaptionTokens -> EncodedCaptions (shared memory)
//   scoreMatrix         ~ runtime/scoreMatrix.ts scoreMatrix (the same ranges and row-major result)
//   scoreBlock          one (images x captions) block, the unit a worker thread runs (scorePool.ts)
// Score blocks: captions grouped by exact length (no padding), one image per run by default: measured at default
// dims (SAF, 1 thread, 40 x 500), 1 image per run gave ~10.8k pairs per CPU-second, 10 images ~9.1k, 40 ~7.8k
// (probably because one image's (rows, D) intermediates, ~26 MB at 500 captions of 13 tokens, stay in cache).
import fs from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { REGIONS, type ModelConfig } from '../../model/config.js';
import type { ParamRegistry } from '../../model/params.js';
import type { EncodedCaptions, EncodedImages } from '../encode.js';
import { VslError } from '../../util/errors.js';
import { mkdirs, writeFileAtomic } from '../../util/atomicFile.js';
import { exportGraphs, type ExportOptions, type GraphName, type OnnxGraphs } from './graphs.js';
import {
  createSession,
  f32Tensor,
  i32Tensor,
  outputData,
  runSession,
  sourceLabel,
  type GraphSource,
  type SessionOptions,
} from './session.js';

export type Range = [number, number];

export interface OnnxScoreOptions {
  imageRange?: Range;
  captionRange?: Range;
  /** images per score run (1) */
  imageBlock?: number;
  /** captions per score run (500) */
  captionBlock?: number;
  /** one caption length per block (true), or blocks of similar lengths padded to the longest (false) */
  bucketByLength?: boolean;
  onProgress?: (pairsDone: number, pairsTotal: number) => void;
}

export const ONNX_IMAGE_BLOCK = 1;
export const ONNX_CAPTION_BLOCK = 500;

export interface OpenOptions extends SessionOptions {
  /** open these graphs only (a score worker needs only 'score') */
  only?: GraphName[];
}

const sharedF32 = (n: number) => new Float32Array(new SharedArrayBuffer(n * 4));

/**
 * Caption blocks over `range`: at most `size` captions each, sorted by length (longest first); with `bucket`, a
 * block never mixes lengths.
 */
function onnxCaptionBlocks(lengths: Int32Array, range: Range, size: number, bucket: boolean): number[][] {
  const idx: number[] = [];
  for (let c = range[0]; c < range[1]; c++) idx.push(c);
  idx.sort((a, b) => lengths[b] - lengths[a] || a - b);
  const blocks: number[][] = [];
  let cur: number[] = [];
  for (const c of idx) {
    if (cur.length === size || (bucket && cur.length && lengths[cur[0]] !== lengths[c])) {
      blocks.push(cur);
      cur = [];
    }
    cur.push(c);
  }
  if (cur.length) blocks.push(cur);
  return blocks;
}

/** The caption side of one score block, padded with zeros to its longest caption, as ORT tensors. */
export interface CaptionFeeds {
  captions: number[];
  words: ort.Tensor;
  tGlobal: ort.Tensor;
  lengths: ort.Tensor;
}

function captionFeeds(cap: EncodedCaptions, D: number, block: number[]): CaptionFeeds {
  const Lp = Math.max(...block.map((c) => cap.lengths[c]));
  const words = new Float32Array(block.length * Lp * D);
  const tg = new Float32Array(block.length * D);
  block.forEach((c, r) => {
    words.set(cap.words.subarray(cap.offsets[c] * D, cap.offsets[c + 1] * D), r * Lp * D);
    tg.set(cap.tGlobal.subarray(c * D, (c + 1) * D), r * D);
  });
  const lengths = Int32Array.from(block, (c) => cap.lengths[c]);
  return {
    captions: block,
    words: f32Tensor(words, [block.length, Lp, D]),
    tGlobal: f32Tensor(tg, [block.length, D]),
    lengths: i32Tensor(lengths, [block.length]),
  };
}

/** A model's three ONNX Runtime sessions. Create with one of the static functions; release() when done. */
export class OnnxModel {
  private constructor(
    readonly config: ModelConfig,
    private readonly sessions: Partial<Record<GraphName, ort.InferenceSession>>,
    private readonly labels: Partial<Record<GraphName, string>>,
  ) {}

  private session(n: GraphName): [ort.InferenceSession, string] {
    const s = this.sessions[n];
    if (!s)
      throw new Error(`this OnnxModel has no ${n} session (opened with only: ${Object.keys(this.sessions).join(',')})`);
    return [s, this.labels[n]!];
  }

  /** Sessions for graphs in memory. */
  static async fromGraphs(g: OnnxGraphs, o: OpenOptions = {}): Promise<OnnxModel> {
    return OnnxModel.fromSources(
      g.config,
      {
        image: { bytes: g.image, name: 'image' },
        caption: { bytes: g.caption, name: 'caption' },
        score: { bytes: g.score, name: 'score' },
      },
      o,
    );
  }

  /** Export a registry's graphs and open them. */
  static async fromRegistry(
    reg: ParamRegistry,
    config: ModelConfig = reg.config,
    o: OpenOptions & ExportOptions & { source?: string } = {},
  ): Promise<OnnxModel> {
    return OnnxModel.fromGraphs(exportGraphs(reg, config, o), o);
  }

  /**
   * Sessions for graph files: a folder of `vsl export --format onnx` (manifest.json holds the config) or of
   * saveGraphs (config.json).
   */
  static async fromDir(dir: string, o: OpenOptions = {}): Promise<OnnxModel> {
    const manifest = path.join(dir, 'manifest.json');
    const cfgFile = fs.existsSync(manifest) ? manifest : path.join(dir, 'config.json');
    let config: ModelConfig;
    try {
      const j = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { model?: { config?: ModelConfig } } & ModelConfig;
      config = cfgFile === manifest ? j.model!.config! : j;
      if (typeof config?.embedSize !== 'number') throw new Error('no model config in it');
    } catch (e) {
      throw new VslError(`${cfgFile}: cannot read the model config: ${(e as Error).message.split('\n')[0]}`);
    }
    const file = (n: GraphName): GraphSource => ({ path: path.join(dir, `${n}.onnx`) });
    return OnnxModel.fromSources(config, { image: file('image'), caption: file('caption'), score: file('score') }, o);
  }

  /** Sessions for the graphs named in `o.only` (default all three), each from its source. */
  static async fromSources(
    config: ModelConfig,
    src: Partial<Record<GraphName, GraphSource>>,
    o: OpenOptions = {},
  ): Promise<OnnxModel> {
    const names = o.only ?? (['image', 'caption', 'score'] as GraphName[]);
    for (const n of names) if (!src[n]) throw new Error(`no source for the ${n} graph`);
    const sessions = await Promise.all(names.map((n) => createSession(src[n]!, o)));
    return new OnnxModel(
      config,
      Object.fromEntries(names.map((n, i) => [n, sessions[i]])),
      Object.fromEntries(names.map((n) => [n, sourceLabel(src[n]!)])),
    );
  }

  /** Images in batches (rows read on demand): regions and v̄ per image, in shared memory. */
  async encodeImages(
    n: number,
    readRows: (start: number, end: number) => Float32Array,
    batch = 100,
    onProgress?: (done: number) => void,
  ): Promise<EncodedImages> {
    const D = this.config.embedSize;
    const regions = sharedF32(n * REGIONS * D);
    const vGlobal = sharedF32(n * D);
    for (let s = 0; s < n; s += batch) {
      const e = Math.min(n, s + batch);
      const images = f32Tensor(readRows(s, e), [e - s, REGIONS, this.config.imgDim]);
      const out = await runSession(...this.session('image'), { images });
      regions.set(outputData(out, 'regions'), s * REGIONS * D);
      vGlobal.set(outputData(out, 'vGlobal'), s * D);
      onProgress?.(e);
    }
    return { n, regions, vGlobal };
  }

  /** Captions (token ids with <start>/<end>) in batches of one length: words and t̄ per caption, shared memory. */
  async encodeCaptionTokens(
    tokens: Int32Array[],
    batch = 128,
    onProgress?: (done: number) => void,
  ): Promise<EncodedCaptions> {
    const D = this.config.embedSize;
    const n = tokens.length;
    const lengths = Int32Array.from(tokens, (t) => t.length);
    const offsets = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + lengths[i];
    const words = sharedF32(offsets[n] * D);
    const tGlobal = sharedF32(n * D);
    let done = 0;
    for (const idx of onnxCaptionBlocks(lengths, [0, n], batch, true)) {
      const L = lengths[idx[0]];
      const ids = new Int32Array(idx.length * L);
      idx.forEach((c, r) => ids.set(tokens[c], r * L));
      const feeds = {
        ids: i32Tensor(ids, [idx.length, L]),
        lengths: i32Tensor(
          Int32Array.from(idx, (c) => lengths[c]),
          [idx.length],
        ),
      };
      const out = await runSession(...this.session('caption'), feeds);
      const wd = outputData(out, 'words');
      const tg = outputData(out, 'tGlobal');
      idx.forEach((c, r) => {
        words.set(wd.subarray(r * L * D, (r + 1) * L * D), offsets[c] * D);
        tGlobal.set(tg.subarray(r * D, (r + 1) * D), c * D);
      });
      done += idx.length;
      onProgress?.(done);
    }
    return { n, lengths, offsets, words, tGlobal };
  }

  /** Scores (images [i0, i1) x the block's captions), row-major, captions in the block's order. */
  async scoreBlock(img: EncodedImages, [i0, i1]: Range, cap: CaptionFeeds): Promise<Float32Array> {
    const D = this.config.embedSize;
    const feeds = {
      regions: f32Tensor(img.regions.slice(i0 * REGIONS * D, i1 * REGIONS * D), [i1 - i0, REGIONS, D]),
      vGlobal: f32Tensor(img.vGlobal.slice(i0 * D, i1 * D), [i1 - i0, D]),
      words: cap.words,
      tGlobal: cap.tGlobal,
      lengths: cap.lengths,
    };
    return outputData(await runSession(...this.session('score'), feeds), 'sims');
  }

  /** Scores as float32, row-major (images of the range x captions of the range), as runtime/scoreMatrix.ts. */
  async scoreMatrix(img: EncodedImages, cap: EncodedCaptions, o: OnnxScoreOptions = {}): Promise<Float32Array> {
    const [i0, i1] = o.imageRange ?? [0, img.n];
    const [c0, c1] = o.captionRange ?? [0, cap.n];
    const nCap = c1 - c0;
    const out = new Float32Array((i1 - i0) * nCap);
    const ib = o.imageBlock ?? ONNX_IMAGE_BLOCK;
    const blocks = onnxCaptionBlocks(
      cap.lengths,
      [c0, c1],
      o.captionBlock ?? ONNX_CAPTION_BLOCK,
      o.bucketByLength ?? true,
    );
    const total = (i1 - i0) * nCap;
    let done = 0;
    for (const block of blocks) {
      const feeds = captionFeeds(cap, this.config.embedSize, block);
      for (let s = i0; s < i1; s += ib) {
        const e = Math.min(i1, s + ib);
        const sims = await this.scoreBlock(img, [s, e], feeds);
        for (let m = 0; m < e - s; m++) {
          const row = (s - i0 + m) * nCap - c0;
          block.forEach((c, r) => (out[row + c] = sims[m * block.length + r]!));
        }
        done += (e - s) * block.length;
        o.onProgress?.(done, total);
      }
    }
    return out;
  }

  async release(): Promise<void> {
    await Promise.all(Object.values(this.sessions).map((s) => s.release()));
  }
}

/** Write a model's graphs to `dir` as image.onnx, caption.onnx, score.onnx and config.json. */
export function saveGraphs(dir: string, g: OnnxGraphs): void {
  mkdirs(dir);
  for (const n of ['image', 'caption', 'score'] as const) writeFileAtomic(path.join(dir, `${n}.onnx`), g[n]);
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(g.config, null, 2) + '\n');
}
