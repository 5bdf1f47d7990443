// The tfjs engine behind QueryScorer: sentences are encoded on the calling thread (one caption side pass, a few
// milliseconds), then scored against the image side with the evaluation's score block, in process or on the
// score worker pool. A server keeps one pool for its whole life (the images are shared with the workers once,
// each query sends only its own captions); a one-shot `vsl query` uses a pool only where the pairs are many.
// The split's captions (for image -> text) are encoded one batch at a time, yielding between batches, so that
// a server encoding them in the background still answers requests.
import type { LoadedModel } from '../eval/loadModel.js';
import { Weights } from '../model/weights.js';
import { encodeCaptionTokens, type EncodedCaptions } from '../runtime/encode.js';
import { DEFAULT_CAPTION_BLOCK, DEFAULT_IMAGE_BLOCK, scoreMatrix } from '../runtime/scoreMatrix.js';
import { defaultWorkers, ScorePool, shardRanges, type Range } from '../runtime/scorePool.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { CAPTION_CHUNK, checkImageRow, encodeInBatches, type QueryScorer, type ScorerInputs } from './scorer.js';

/**
 * Fewest pairs worth a worker pool in a one-shot query: each worker loads its own tfjs and the weights, which takes
 * about as long as scoring one sentence against 1,000 images in process (docs/performance.md, `vsl query` latency).
 */
const POOL_MIN_PAIRS = 20_000;

/** Images per block for Q sentences: larger blocks for few captions keep the pairs per block near eval's 5 x 250. */
function queryImageBlock(sentences: number): number {
  return Math.min(
    250,
    Math.max(DEFAULT_IMAGE_BLOCK, Math.floor((DEFAULT_IMAGE_BLOCK * DEFAULT_CAPTION_BLOCK) / sentences)),
  );
}

const EMPTY_CAPTIONS: EncodedCaptions = {
  n: 0,
  lengths: new Int32Array(0),
  offsets: new Int32Array(1),
  words: new Float32Array(0),
  tGlobal: new Float32Array(0),
};

class TfjsQueryScorer implements QueryScorer {
  readonly engine: string;
  readonly nImages: number;
  readonly nCaptions: number;
  captionsEncoded = 0;
  readonly seconds = { encodeCaptions: 0, score: 0 };
  private readonly w: Weights;
  private pool: Promise<ScorePool> | undefined;
  private captions: Promise<EncodedCaptions> | undefined;
  private closed = false;

  constructor(private readonly o: ScorerInputs) {
    this.engine = `tfjs-${o.backend}`;
    this.nImages = o.images.n;
    this.nCaptions = o.captionTokens.length;
    this.w = Weights.of(o.model.reg);
  }

  private get model(): LoadedModel {
    return this.o.model;
  }

  private workersFor(pairs: number): number {
    if (this.o.workers !== undefined) return this.o.workers;
    return this.o.offMainThread || pairs >= POOL_MIN_PAIRS ? defaultWorkers(this.o.backend) : 1;
  }

  /** The pool, started once (its size from the first request that needs it). */
  private poolOf(workers: number, imageBlock: number): Promise<ScorePool> {
    this.pool ??= (async () =>
      ScorePool.start({
        workers: Math.max(1, Math.min(workers, Math.ceil(this.nImages / imageBlock))),
        backend: this.o.backend,
        config: this.model.config,
        weights: await this.model.reg.toArrays(),
        img: this.o.images,
        cap: EMPTY_CAPTIONS,
        imageBlock,
      }))();
    return this.pool;
  }

  /** Start the workers now (a server), sized for one sentence at a time. */
  async start(): Promise<void> {
    await this.poolOf(this.workersFor(this.nImages), queryImageBlock(1));
  }

  private encode(tokens: readonly Int32Array[]): EncodedCaptions {
    const t0 = performance.now();
    try {
      return encodeCaptionTokens(this.w, this.model.config, [...tokens], CAPTION_CHUNK);
    } finally {
      this.seconds.encodeCaptions += (performance.now() - t0) / 1000;
    }
  }

  private async timed<T>(f: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.seconds.score += (performance.now() - t0) / 1000;
    }
  }

  async scoreTexts(tokens: readonly Int32Array[]): Promise<Float32Array[]> {
    this.checkOpen();
    const Q = tokens.length;
    if (Q === 0) return [];
    const cap = this.encode(tokens);
    const imageBlock = queryImageBlock(Q);
    const workers = this.workersFor(this.nImages * Q);
    const sims = await this.timed(async () => {
      if (workers <= 1 && !this.o.offMainThread)
        return scoreMatrix(this.w, this.model.config, this.o.images, cap, { imageBlock });
      const pool = await this.poolOf(workers, imageBlock);
      return pool.score([0, this.nImages], [0, Q], undefined, { cap, imageBlock });
    });
    return tokens.map((_, q) => Float32Array.from({ length: this.nImages }, (_, i) => sims[i * Q + q]));
  }

  prepareCaptions(): Promise<void> {
    this.captions ??= this.encodeSplitCaptions();
    return this.captions.then(() => undefined);
  }

  /** The split's captions, one batch at a time (the same batches whoever asks: server or one-shot query). */
  private async encodeSplitCaptions(): Promise<EncodedCaptions> {
    const cap = await encodeInBatches(
      this.o.captionTokens,
      this.model.config.embedSize,
      (part) => this.encode(part),
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
    const nCap = cap.n;
    const workers = this.workersFor(nCap);
    return this.timed(async () => {
      const one: Range = [image, image + 1];
      if (workers <= 1 && !this.o.offMainThread)
        return scoreMatrix(this.w, this.model.config, this.o.images, cap, { imageRange: one, imageBlock: 1 });
      // one image cannot be split between workers: its captions are, one part per worker
      const pool = await this.poolOf(workers, queryImageBlock(1));
      const parts = shardRanges(0, nCap, pool.workers, DEFAULT_CAPTION_BLOCK);
      const rows = await Promise.all(parts.map((r) => pool.score(one, r, undefined, { cap, imageBlock: 1 })));
      const out = new Float32Array(nCap);
      parts.forEach((r, k) => out.set(rows[k], r[0]));
      return out;
    });
  }

  private checkOpen(): void {
    if (this.closed) throw new VslError('the scorer is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.w.dispose();
    const pool = this.pool;
    this.pool = undefined;
    if (pool) await (await pool.catch(() => undefined))?.close();
  }
}

export async function openTfjsScorer(o: ScorerInputs): Promise<QueryScorer> {
  if (o.images.n === 0) throw new VslError('the image side is empty: nothing to search');
  const s = new TfjsQueryScorer(o);
  if (o.offMainThread) await s.start();
  return s;
}
