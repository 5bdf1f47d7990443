// Training batches: a seeded shuffle per epoch, image rows read from the .npy on demand (the next batch's
// rows are read on libuv's threads while the current step computes), token ids prepared once, and the
// sparse TF-IDF similarity matrices of the batch for the semantic loss.
import fs from 'node:fs';
import type { PrecompSplit } from '../data/precomp.js';
import { encodeCaption, type Vocab } from '../data/vocab.js';
import { fitTfidf, imageCider, captionCider, type Tfidf } from '../data/tfidf.js';
import type { SemanticLossKind } from '../loss/semantic.js';
import type { TrainBatch } from './step.js';
import { Rng, mixSeed } from '../util/rng.js';
import { REGIONS } from '../model/config.js';

export class TrainData {
  readonly tokens: Int32Array[];
  readonly tfidf: Tfidf | null;
  constructor(
    readonly split: PrecompSplit,
    vocab: Vocab,
    readonly semantic: SemanticLossKind,
  ) {
    this.tokens = split.captions.map((c) => encodeCaption(vocab, c));
    this.tfidf = semantic === 'none' ? null : fitTfidf(split.captions, { float32: true });
  }

  get nCaptions(): number {
    return this.split.nCaptions;
  }

  /** The caption order of an epoch: a permutation from (seed, epoch) alone. */
  epochOrder(seed: number, epoch: number): Int32Array {
    return new Rng(mixSeed(seed, epoch, 0x5eed)).permutation(this.nCaptions);
  }

  /** Batches of an epoch (the last one short, as the reference without drop_last). */
  batchesOf(order: Int32Array, batchSize: number): Int32Array[] {
    const out: Int32Array[] = [];
    for (let s = 0; s < order.length; s += batchSize)
      out.push(order.subarray(s, Math.min(order.length, s + batchSize)));
    return out;
  }

  /** Start reading the image rows of a batch of caption indices; resolves to (B, 36, imgDim) float32. */
  async readImages(capIdx: Int32Array): Promise<Float32Array> {
    const h = this.split.images;
    const rowBytes = h.rowSize * 4;
    const out = new Float32Array(capIdx.length * h.rowSize);
    if (h.dtype !== '<f4') {
      // other dtypes are converted by the synchronous reader
      return h.readRowsIndexed(
        Array.from(capIdx, (c) => this.split.imageOf(c)),
        out,
      );
    }
    const rows = Array.from(capIdx, (c) => this.split.imageOf(c));
    const fh = await fs.promises.open(h.path, 'r');
    try {
      const buf = new Uint8Array(out.buffer);
      await Promise.all(rows.map((r, i) => fh.read(buf, i * rowBytes, rowBytes, h.dataOffset + r * rowBytes)));
    } finally {
      await fh.close();
    }
    h.checkRows(out, rows); // read past the reader, so checked here: NaN/Inf names the file and row
    return out;
  }

  /**
   * Assemble a batch: captions sorted by length, longest first (the reference's collate), images alongside,
   * and the TF-IDF similarities the step's semantic term needs (none while --semantic-warmup-epochs runs).
   */
  assemble(capIdx: Int32Array, images: Float32Array, semantic: SemanticLossKind = this.semantic): TrainBatch {
    const B = capIdx.length;
    const order = [...Array(B).keys()].sort(
      (a, b) => this.tokens[capIdx[b]].length - this.tokens[capIdx[a]].length || a - b,
    );
    const maxLen = this.tokens[capIdx[order[0]]].length;
    const ids = new Int32Array(B * maxLen);
    const lengths: number[] = [];
    const rowSize = REGIONS * this.split.imgDim;
    const imgs = new Float32Array(B * rowSize);
    const caps: number[] = [];
    order.forEach((o, r) => {
      const t = this.tokens[capIdx[o]];
      ids.set(t, r * maxLen);
      lengths.push(t.length);
      imgs.set(images.subarray(o * rowSize, (o + 1) * rowSize), r * rowSize);
      caps.push(capIdx[o]);
    });
    const imgIdx = caps.map((c) => this.split.imageOf(c));
    const tfidf = semantic === 'none' ? null : this.tfidf;
    return {
      images: imgs,
      tokens: { ids, lengths, maxLen },
      imageSim: tfidf && this.split.imDiv === 5 ? imageCider(tfidf, imgIdx, 5) : null,
      captionSim: tfidf && semantic === 'visual+textual' ? captionCider(tfidf, caps) : null,
    };
  }
}
