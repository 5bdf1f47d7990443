// The ONNX Runtime engine behind QueryScorer (scorer.ts): the model's caption and score graphs exported in memory
// from its registry, one session each with every core (up to 2). ORT runs a session on its own threads and its
// run is asynchronous, so the event loop stays free while it scores (a server needs no worker for that). The
// image side is what the index or the retrieval encoded (the same layout whichever engine made it); sentences and
// the split's captions are encoded here, the split's one batch at a time with a yield between batches.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { cpuCores, resolveEngine } from '../runtime/engine.js';
import type { EncodedCaptions } from '../runtime/encode.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import type { QueryScorer, ScorerInputs } from './scorer.js';

/** Captions encoded between two yields to the event loop. */
const CAPTION_CHUNK = 128;
/** Pairs per score run for sentence queries: as many as a 500-caption block against one image in evaluation. */
const PAIRS_PER_RUN = 500;

type OnnxModel = import('../runtime/onnx/runner.js').OnnxModel;

class OnnxQueryScorer implements QueryScorer {
  readonly nImages: number;
  readonly nCaptions: number;
  captionsEncoded = 0;
  readonly seconds = { encodeCaptions: 0, score: 0 };
  private captions: Promise<EncodedCaptions> | undefined;
  private closed = false;

  constructor(
    readonly engine: string,
    private readonly m: OnnxModel,
    private readonly o: ScorerInputs,
  ) {
    this.nImages = o.images.n;
    this.nCaptions = o.captionTokens.length;
  }

  private async timed<T>(part: 'encodeCaptions' | 'score', f: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.seconds[part] += (performance.now() - t0) / 1000;
    }
  }

  async scoreTexts(tokens: readonly Int32Array[]): Promise<Float32Array[]> {
    this.checkOpen();
    const Q = tokens.length;
    if (Q === 0) return [];
    const cap = await this.timed('encodeCaptions', () => this.m.encodeCaptionTokens([...tokens]));
    // a few sentences against every image: many images per run (one run per image would spend the time in calls)
    const imageBlock = Math.max(1, Math.ceil(PAIRS_PER_RUN / Q));
    const sims = await this.timed('score', () => this.m.scoreMatrix(this.o.images, cap, { imageBlock }));
    return tokens.map((_, q) => Float32Array.from({ length: this.nImages }, (_, i) => sims[i * Q + q]));
  }

  prepareCaptions(): Promise<void> {
    this.captions ??= this.encodeSplitCaptions();
    return this.captions.then(() => undefined);
  }

  private async encodeSplitCaptions(): Promise<EncodedCaptions> {
    const tokens = this.o.captionTokens;
    const n = tokens.length;
    const D = this.o.model.config.embedSize;
    const lengths = Int32Array.from(tokens, (t) => t.length);
    const offsets = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + lengths[i];
    const words = new Float32Array(offsets[n] * D);
    const tGlobal = new Float32Array(n * D);
    for (let s = 0; s < n; s += CAPTION_CHUNK) {
      this.checkOpen();
      const e = Math.min(n, s + CAPTION_CHUNK);
      const part = await this.timed('encodeCaptions', () => this.m.encodeCaptionTokens(tokens.slice(s, e)));
      words.set(part.words, offsets[s] * D);
      tGlobal.set(part.tGlobal, s * D);
      this.captionsEncoded = e;
      if (e < n) await yieldToLoop();
    }
    log().debug(`encoded the split's ${n} captions in ${this.seconds.encodeCaptions.toFixed(1)} s`);
    return { n, lengths, offsets, words, tGlobal };
  }

  async scoreImage(image: number): Promise<Float32Array> {
    this.checkOpen();
    if (!Number.isSafeInteger(image) || image < 0 || image >= this.nImages)
      throw new VslError(`image: expected a row from 0 to ${this.nImages - 1}, found ${image}`);
    await this.prepareCaptions();
    const cap = await this.captions!;
    return this.timed('score', () => this.m.scoreMatrix(this.o.images, cap, { imageRange: [image, image + 1] }));
  }

  private checkOpen(): void {
    if (this.closed) throw new VslError('the scorer is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.m.release();
  }
}

/** The onnx engine; an error if ORT does not load or the module has no graph (engines.ts's auto falls back). */
export async function openOnnxScorer(o: ScorerInputs): Promise<QueryScorer> {
  if (o.images.n === 0) throw new VslError('the image side is empty: nothing to search');
  const info = await resolveEngine('onnx', o.model.config.module);
  const { OnnxModel } = await import('../runtime/onnx/runner.js');
  const threads = Math.max(1, Math.min(2, o.workers ?? cpuCores()));
  const m = await OnnxModel.fromRegistry(o.model.reg, o.model.config, {
    only: ['caption', 'score'],
    intraOpThreads: threads,
  });
  return new OnnxQueryScorer(`onnx (onnxruntime-node ${info.version}, ${threads} threads)`, m, o);
}
