// `vsl query` and `vsl serve`: retrieval for a person. A free sentence ranks the split's images (text -> image);
// an image ranks the split's captions (image -> text). Built from the evaluation's parts: the checkpoint and
// vocabulary are found as `vsl eval` finds them, sentences are tokenised as in training, the image side comes
// from an index (imageIndex.ts) or is encoded here in the evaluation's batches, and scores come from a
// QueryScorer (scorer.ts), so that the engine is a choice.
import crypto from 'node:crypto';
import { selectBackend, type BackendChoice } from '../ops/backend.js';
import { tokenizeCaption } from '../data/tokenizer.js';
import { encodeCaption, type Vocab } from '../data/vocab.js';
import type { PrecompSplit } from '../data/precomp.js';
import { encodeImages, type EncodedImages } from '../runtime/encode.js';
import { IMAGE_ENCODE_BATCH, imageRows, loadModelAndVocab, openEvalSplit } from '../eval/scoreSplit.js';
import type { LoadedModel } from '../eval/loadModel.js';
import { CAPS_PER_IMAGE } from '../eval/metrics.js';
import { topK } from '../eval/topk.js';
import { Weights } from '../model/weights.js';
import { sha256File } from '../util/atomicFile.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { checkIndex, readIndexImages, readIndexManifest, type IndexManifest } from './imageIndex.js';
import { DEFAULT_ENGINE, scorerFactory } from './engines.js';
import type { QueryScorer } from './scorer.js';

export interface QueryOptions {
  /** The checkpoint; with an index, the index's own by default. */
  modelPath?: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
  /** default: the index's split, else test */
  split?: string;
  /** an index folder written by vsl index */
  index?: string;
  workers?: number;
  backend?: BackendChoice;
  engine?: string;
  /** a server: score off the main thread, keep the workers */
  offMainThread?: boolean;
  /** unknown words are returned, not logged as warnings */
  quiet?: boolean;
}

interface ImageHit {
  rank: number;
  image: number;
  score: number;
  /** the image's ground-truth captions: precomp features have no pixels, the captions stand in for them */
  captions: string[];
  /** the image of the query when the query is one of the split's captions */
  groundTruth: boolean;
}

/** Where a query that is one of the split's own captions finds its image. */
interface GroundTruthRank {
  caption: number;
  image: number;
  /** 1-based, ties counted in the image's favour (as the metrics) */
  rank: number;
  score: number;
}

export interface SentenceResult {
  text: string;
  tokens: string[];
  /** words read as <unk> */
  unknown: string[];
  hits: ImageHit[];
  groundTruth: GroundTruthRank | null;
}

interface CaptionHit {
  rank: number;
  caption: number;
  image: number;
  score: number;
  text: string;
  groundTruth: boolean;
}

export interface ImageResult {
  image: number;
  captions: { caption: number; text: string }[];
  hits: CaptionHit[];
  /** 1-based rank of the image's best ground-truth caption among all captions */
  firstGroundTruthRank: number;
}

export interface Timing {
  load: number;
  /** reading the index, or encoding the images */
  encodeImages: number;
  encodeCaptions: number;
  score: number;
}

/** sha256 of the captions in use, one a line (as the evaluation's parts record it). */
export function captionsSha256(captions: readonly string[]): string {
  return crypto.createHash('sha256').update(captions.join('\n')).digest('hex');
}

/** A model and a split, opened once; queries share the image side and the scorer. */
export class Retrieval {
  private allImages: EncodedImages | undefined;
  private scorer: QueryScorer | undefined;
  private captionKeys: Map<string, number> | undefined;
  private captionIds: Int32Array[] | undefined;
  private readonly time = { load: 0, encodeImages: 0 };
  private readonly closed: QueryScorer['seconds'][] = [];

  private constructor(
    readonly model: LoadedModel,
    readonly vocab: Vocab,
    readonly vocabFile: string,
    readonly split: PrecompSplit,
    readonly nImages: number,
    readonly backend: string,
    readonly index: { dir: string; manifest: IndexManifest } | undefined,
    private readonly o: QueryOptions,
  ) {}

  static async open(o: QueryOptions): Promise<Retrieval> {
    const t0 = performance.now();
    scorerFactory(o.engine ?? DEFAULT_ENGINE); // an unknown engine fails before anything loads
    const manifest = o.index !== undefined ? readIndexManifest(o.index) : undefined;
    const modelPath = o.modelPath ?? manifest?.model.file;
    if (!modelPath) throw new VslError('--model: expected a checkpoint file (or --index, whose checkpoint is used)');
    const backend = await selectBackend(o.backend ?? 'auto');
    const { model, dataName, dataPath, vocabFile, vocab } = await loadModelAndVocab({
      modelPath,
      dataPath: o.dataPath ?? manifest?.data.dataPath,
      vocabPath: o.vocabPath ?? manifest?.data.vocab,
      dataName: o.dataName ?? manifest?.data.dataName,
    });
    const splitName = o.split ?? manifest?.data.split ?? 'test';
    let split: PrecompSplit | undefined;
    try {
      split = openEvalSplit(dataPath, dataName, splitName, model.config.imgDim, modelPath);
      if (split.nCaptions % CAPS_PER_IMAGE !== 0)
        throw new VslError(
          `${split.paths.captions}: expected ${CAPS_PER_IMAGE} captions per image, found ${split.nCaptions}`,
        );
      const nImages = split.nCaptions / CAPS_PER_IMAGE;
      const index = o.index !== undefined && manifest ? { dir: o.index, manifest } : undefined;
      const r = new Retrieval(model, vocab, vocabFile, split, nImages, backend.name, index, o);
      r.time.load = (performance.now() - t0) / 1000;
      if (index) r.loadIndex(modelPath, dataName, splitName);
      return r;
    } catch (e) {
      split?.close();
      model.reg.dispose();
      throw e;
    }
  }

  private loadIndex(modelPath: string, dataName: string, splitName: string): void {
    const t0 = performance.now();
    const { dir, manifest } = this.index!;
    checkIndex(dir, manifest, {
      modelFile: modelPath,
      modelSha256: sha256File(modelPath),
      config: this.model.config,
      dataName,
      split: splitName,
      captionsSha256: captionsSha256(this.split.captions),
      nImages: this.nImages,
    });
    this.allImages = readIndexImages(dir, manifest);
    this.time.encodeImages += (performance.now() - t0) / 1000;
  }

  get seconds(): Timing {
    const parts = this.scorer ? [...this.closed, this.scorer.seconds] : this.closed;
    const sum = (k: 'encodeCaptions' | 'score') => parts.reduce((a, s) => a + s[k], 0);
    return { ...this.time, encodeCaptions: sum('encodeCaptions'), score: sum('score') };
  }

  get engine(): string | undefined {
    return this.scorer?.engine;
  }

  async close(): Promise<void> {
    await this.closeScorer();
    this.split.close();
    this.model.reg.dispose();
  }

  private async closeScorer(): Promise<void> {
    const s = this.scorer;
    this.scorer = undefined;
    if (s) {
      this.closed.push({ ...s.seconds });
      await s.close();
    }
  }

  /** Images [s, e) encoded in the evaluation's batches (counted from image 0: the same numbers as an index). */
  encodeImageRange(s: number, e: number, onProgress?: (done: number) => void): EncodedImages {
    const t0 = performance.now();
    const w = Weights.of(this.model.reg);
    try {
      const rows = imageRows(this.split);
      return encodeImages(w, this.model.config, e - s, (a, b) => rows(s + a, s + b), IMAGE_ENCODE_BATCH, onProgress);
    } finally {
      w.dispose();
      this.time.encodeImages += (performance.now() - t0) / 1000;
    }
  }

  private splitCaptionIds(): Int32Array[] {
    this.captionIds ??= this.split.captions.map((t) => encodeCaption(this.vocab, t));
    return this.captionIds;
  }

  /** A scorer over `images` (every image of the split, or the encoding batch of one). */
  private async openScorer(images: EncodedImages): Promise<QueryScorer> {
    return scorerFactory(this.o.engine ?? DEFAULT_ENGINE)({
      model: this.model,
      images,
      captionTokens: this.splitCaptionIds(),
      backend: this.backend,
      workers: this.o.workers,
      offMainThread: this.o.offMainThread ?? false,
    });
  }

  /** The scorer over every image of the split (encoding them first when there is no index). */
  private async fullScorer(): Promise<QueryScorer> {
    if (!this.scorer || this.scorer.nImages !== this.nImages) {
      await this.closeScorer();
      this.allImages ??= this.encodeImageRange(0, this.nImages);
      this.scorer = await this.openScorer(this.allImages);
    }
    return this.scorer;
  }

  /** Open the scorer over every image now (a server: its workers start before the first query). */
  async startScorer(): Promise<void> {
    await this.fullScorer();
  }

  /** Start encoding the split's captions (image -> text) in the background; a server calls it at start. */
  async prepareImageQueries(): Promise<void> {
    this.groundTruthKeys();
    await (await this.fullScorer()).prepareCaptions();
  }

  /** Captions of the split encoded so far, of all of them. */
  captionsProgress(): { done: number; total: number } {
    const s = this.scorer;
    return { done: s && s.nImages === this.nImages ? s.captionsEncoded : 0, total: this.split.nCaptions };
  }

  imageCaptions(i: number): string[] {
    return this.split.captions.slice(i * CAPS_PER_IMAGE, (i + 1) * CAPS_PER_IMAGE);
  }

  /** The split's captions by their words (case and punctuation as the tokenizer sees them): the first of each. */
  private groundTruthKeys(): Map<string, number> {
    if (!this.captionKeys) {
      const keys = new Map<string, number>();
      this.split.captions.forEach((c, j) => {
        const k = tokenizeCaption(c).join(' ');
        if (!keys.has(k)) keys.set(k, j);
      });
      this.captionKeys = keys;
    }
    return this.captionKeys;
  }

  /** Rank every image of the split for each sentence (all sentences scored in one pass). */
  async rankImages(sentences: readonly string[], top: number): Promise<SentenceResult[]> {
    const words = sentences.map((s) => tokenizeCaption(s));
    const unknown = words.map((ws) => [...new Set(ws.filter((w) => !this.vocab.word2idx.has(w)))]);
    if (!this.o.quiet)
      unknown.forEach((u, q) => {
        if (u.length > 0)
          log().warn(
            `not in the vocabulary (${this.vocabFile}), read as <unk>: ${u.map((w) => JSON.stringify(w)).join(', ')} in "${sentences[q]}"`,
          );
      });
    const scorer = await this.fullScorer();
    const sims = await scorer.scoreTexts(sentences.map((s) => encodeCaption(this.vocab, s)));
    const keys = this.groundTruthKeys();
    return sentences.map((text, q) => {
      const s = sims[q];
      const caption = keys.get(words[q].join(' '));
      let groundTruth: GroundTruthRank | null = null;
      if (caption !== undefined) {
        const image = Math.floor(caption / CAPS_PER_IMAGE);
        let above = 0;
        for (let i = 0; i < this.nImages; i++) if (s[i] > s[image]) above++;
        groundTruth = { caption, image, rank: above + 1, score: s[image] };
      }
      return {
        text,
        tokens: words[q],
        unknown: unknown[q],
        hits: topK(this.nImages, (i) => s[i], top).map((h, k) => ({
          rank: k + 1,
          image: h.index,
          score: h.score,
          captions: this.imageCaptions(h.index),
          groundTruth: h.index === groundTruth?.image,
        })),
        groundTruth,
      };
    });
  }

  /** Rank every caption of the split for image `image`, the ground truth marked. */
  async rankCaptions(image: number, top: number): Promise<ImageResult> {
    if (!Number.isSafeInteger(image) || image < 0 || image >= this.nImages) {
      throw new VslError(
        `--image: expected an image index from 0 to ${this.nImages - 1} (split '${this.split.split}'), found ${image}`,
      );
    }
    let sims: Float32Array;
    if (this.allImages) sims = await (await this.fullScorer()).scoreImage(image);
    else {
      // without an index, only the encoding batch that holds the image is encoded
      const b0 = Math.floor(image / IMAGE_ENCODE_BATCH) * IMAGE_ENCODE_BATCH;
      const b1 = Math.min(this.nImages, b0 + IMAGE_ENCODE_BATCH);
      await this.closeScorer();
      this.scorer = await this.openScorer(this.encodeImageRange(b0, b1));
      sims = await this.scorer.scoreImage(image - b0);
    }
    const nCap = this.split.nCaptions;
    const own = (c: number) => Math.floor(c / CAPS_PER_IMAGE) === image;
    let best = -Infinity;
    for (let c = image * CAPS_PER_IMAGE; c < (image + 1) * CAPS_PER_IMAGE; c++) best = Math.max(best, sims[c]);
    let above = 0;
    for (let c = 0; c < nCap; c++) if (sims[c] > best) above++;
    return {
      image,
      captions: this.imageCaptions(image).map((text, k) => ({ caption: image * CAPS_PER_IMAGE + k, text })),
      hits: topK(nCap, (c) => sims[c], top).map((h, k) => ({
        rank: k + 1,
        caption: h.index,
        image: Math.floor(h.index / CAPS_PER_IMAGE),
        score: h.score,
        text: this.split.captions[h.index],
        groundTruth: own(h.index),
      })),
      firstGroundTruthRank: above + 1,
    };
  }
}
