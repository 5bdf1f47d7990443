// `vsl query`: retrieval for a person. A free sentence ranks the split's images (text -> image); an image
// ranks the split's captions (image -> text). Built from the evaluation's parts: the checkpoint and vocabulary
// are found as `vsl eval` finds them, sentences are tokenised as in training, the split is encoded by
// runtime/encode.ts (images once per run, whatever the number of sentences) and scored by the eval scorer (the
// worker pool where the pairs are many, in process otherwise; one image against every caption runs in process,
// where a pool has no second shard to give a worker).
import { selectBackend, type BackendChoice } from '../ops/backend.js';
import { tokenizeCaption } from '../data/tokenizer.js';
import { encodeCaption, type Vocab } from '../data/vocab.js';
import type { PrecompSplit } from '../data/precomp.js';
import { encodeCaptionTokens, encodeImages, type EncodedImages } from '../runtime/encode.js';
import { imageRows, loadModelAndVocab, openEvalSplit } from '../eval/scoreSplit.js';
import type { LoadedModel } from '../eval/loadModel.js';
import { CAPS_PER_IMAGE } from '../eval/metrics.js';
import { createScorer, defaultWorkers } from '../runtime/scorePool.js';
import { DEFAULT_CAPTION_BLOCK, DEFAULT_IMAGE_BLOCK } from '../runtime/scoreMatrix.js';
import { topK } from '../eval/topk.js';
import { Weights } from '../model/weights.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';

/**
 * Fewest pairs worth a worker pool: each worker loads its own tfjs and the weights, which takes about as long as
 * scoring one sentence against 1,000 images in process (docs/performance.md, `vsl query` latency).
 */
const POOL_MIN_PAIRS = 20_000;

export interface QueryOptions {
  modelPath: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
  split: string;
  top: number;
  workers?: number;
  backend?: BackendChoice;
}

interface ImageHit {
  rank: number;
  image: number;
  score: number;
  /** the image's ground-truth captions: precomp features have no pixels, the captions stand in for them */
  captions: string[];
}

export interface SentenceResult {
  text: string;
  tokens: string[];
  /** words read as <unk> */
  unknown: string[];
  hits: ImageHit[];
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
  encodeImages: number;
  encodeCaptions: number;
  score: number;
}

/** A model and a split, opened once; queries share the image encodings. */
export class Retrieval {
  private images: EncodedImages | undefined;
  readonly seconds: Timing = { load: 0, encodeImages: 0, encodeCaptions: 0, score: 0 };

  private constructor(
    readonly model: LoadedModel,
    readonly vocab: Vocab,
    readonly vocabFile: string,
    readonly split: PrecompSplit,
    readonly nImages: number,
    readonly backend: string,
    /** --workers; by default a pool only for many pairs (below, starting the workers costs more than it saves) */
    readonly workers: number | undefined,
  ) {}

  static async open(o: QueryOptions): Promise<Retrieval> {
    const t0 = performance.now();
    const backend = await selectBackend(o.backend ?? 'auto');
    const { model, dataName, dataPath, vocabFile, vocab } = await loadModelAndVocab(o);
    const split = openEvalSplit(dataPath, dataName, o.split, model.config.imgDim, o.modelPath);
    if (split.nCaptions % CAPS_PER_IMAGE !== 0) {
      split.close();
      model.reg.dispose();
      throw new VslError(
        `${split.paths.captions}: expected ${CAPS_PER_IMAGE} captions per image, found ${split.nCaptions}`,
      );
    }
    const r = new Retrieval(model, vocab, vocabFile, split, split.nCaptions / CAPS_PER_IMAGE, backend.name, o.workers);
    r.seconds.load = (performance.now() - t0) / 1000;
    return r;
  }

  close(): void {
    this.split.close();
    this.model.reg.dispose();
  }

  private encodeImageRange(s: number, e: number): EncodedImages {
    const t0 = performance.now();
    const w = Weights.of(this.model.reg);
    try {
      const rows = imageRows(this.split);
      return encodeImages(w, this.model.config, e - s, (a, b) => rows(s + a, s + b), 100);
    } finally {
      w.dispose();
      this.seconds.encodeImages += (performance.now() - t0) / 1000;
    }
  }

  private encodeTokens(tokens: Int32Array[]) {
    const t0 = performance.now();
    const w = Weights.of(this.model.reg);
    try {
      return encodeCaptionTokens(w, this.model.config, tokens, 128);
    } finally {
      w.dispose();
      this.seconds.encodeCaptions += (performance.now() - t0) / 1000;
    }
  }

  private imageCaptions(i: number): string[] {
    return this.split.captions.slice(i * CAPS_PER_IMAGE, (i + 1) * CAPS_PER_IMAGE);
  }

  /** Rank every image of the split for each sentence (all sentences scored in one pass). */
  async rankImages(sentences: readonly string[], top: number): Promise<SentenceResult[]> {
    const words = sentences.map((s) => tokenizeCaption(s));
    const unknown = words.map((ws) => [...new Set(ws.filter((w) => !this.vocab.word2idx.has(w)))]);
    unknown.forEach((u, q) => {
      if (u.length > 0)
        log().warn(
          `not in the vocabulary (${this.vocabFile}), read as <unk>: ${u.map((w) => JSON.stringify(w)).join(', ')} in "${sentences[q]}"`,
        );
    });
    this.images ??= this.encodeImageRange(0, this.nImages);
    const cap = this.encodeTokens(sentences.map((s) => encodeCaption(this.vocab, s)));
    const t0 = performance.now();
    // Few captions: larger image blocks keep the pairs per block near the evaluation's (5 x 250).
    const imageBlock = Math.min(
      250,
      Math.max(DEFAULT_IMAGE_BLOCK, Math.floor((DEFAULT_IMAGE_BLOCK * DEFAULT_CAPTION_BLOCK) / sentences.length)),
    );
    const pairs = this.nImages * sentences.length;
    const workers = this.workers ?? (pairs >= POOL_MIN_PAIRS ? defaultWorkers(this.backend) : 1);
    const scorer = await createScorer({
      workers: Math.min(workers, Math.ceil(this.nImages / imageBlock)),
      backend: this.backend,
      reg: this.model.reg,
      config: this.model.config,
      img: this.images,
      cap,
      imageBlock,
    });
    let sims: Float32Array;
    try {
      sims = await scorer.score([0, this.nImages], [0, sentences.length]);
    } finally {
      await scorer.close();
    }
    this.seconds.score += (performance.now() - t0) / 1000;
    const Q = sentences.length;
    return sentences.map((text, q) => ({
      text,
      tokens: words[q],
      unknown: unknown[q],
      hits: topK(this.nImages, (i) => sims[i * Q + q], top).map((h, k) => ({
        rank: k + 1,
        image: h.index,
        score: h.score,
        captions: this.imageCaptions(h.index),
      })),
    }));
  }

  /** Rank every caption of the split for image `image`, the ground truth marked. */
  async rankCaptions(image: number, top: number): Promise<ImageResult> {
    if (!Number.isSafeInteger(image) || image < 0 || image >= this.nImages) {
      throw new VslError(
        `--image: expected an image index from 0 to ${this.nImages - 1} (split '${this.split.split}'), found ${image}`,
      );
    }
    const img = this.encodeImageRange(image, image + 1);
    const nCap = this.split.nCaptions;
    const cap = this.encodeTokens(this.split.captions.map((t) => encodeCaption(this.vocab, t)));
    const t0 = performance.now();
    const scorer = await createScorer({
      workers: 1,
      backend: this.backend,
      reg: this.model.reg,
      config: this.model.config,
      img,
      cap,
      imageBlock: 1,
    });
    let sims: Float32Array;
    try {
      sims = await scorer.score([0, 1], [0, nCap]);
    } finally {
      await scorer.close();
    }
    this.seconds.score += (performance.now() - t0) / 1000;
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
