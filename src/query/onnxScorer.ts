// The ONNX Runtime engine behind QueryScorer (scorer.ts): the model's caption and score graphs exported in memory
// from its registry, one session each with every core (up to 2). ORT runs a session on its own threads and its
// run is asynchronous, so the event loop stays free while it scores (a server needs no worker for that). The
// image side is what the index or the retrieval encoded (the same layout whichever engine made it); sentences and
// the split's captions are encoded here, the split's one batch at a time with a yield between batches.
import { cpuCores, resolveEngine } from '../runtime/engine.js';
import type { EncodedCaptions } from '../runtime/encode.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { checkImageRow, encodeInBatches, type QueryScorer, type ScorerInputs } from './scorer.js';

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
    const cap = await encodeInBatches(
      this.o.captionTokens,
      this.o.model.config.embedSize,
      (part) => this.timed('encodeCaptions', () => this.m.encodeCaptionTokens(part)),
      () => this.checkOpen(),
      (n) => (this.captionsEncoded = n),
    );
    log().debug(`encoded the split's ${cap.n} captions in ${this.seconds.encodeCaptions.toFixed(1)} s`);
    return cap;
  }

  async scoreImage(image: number): Promise<Float32Array> {
    this.checkOpen();
    checkImageRow(image, this.nImages);
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
