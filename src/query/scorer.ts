// The one interface between retrieval (vsl query, vsl serve) and the engine that computes scores, so that an
// engine plugs in by one file: tfjs (tfjsScorer.ts) and ONNX Runtime (onnxScorer.ts). A scorer is
// opened on a model and the split's image side (from an index or just encoded) and answers both directions;
// engines.ts maps --engine names to the factories.
import type { LoadedModel } from '../eval/loadModel.js';
import type { EncodedImages } from '../runtime/encode.js';

export interface QueryScorer {
  /** e.g. "tfjs-wasm": shown in the logs and the page */
  readonly engine: string;
  /** images scored by scoreTexts (the rows of `images`) */
  readonly nImages: number;
  /** captions scored by scoreImage (the split's, in file order) */
  readonly nCaptions: number;
  /** Captions of the split encoded so far (scoreImage waits for all of them). */
  readonly captionsEncoded: number;
  /**
   * One score per image for each sentence, given as token ids with <start> and <end> (data/vocab.ts
   * encodeCaption): result[q][i] = score(image i, sentence q).
   */
  scoreTexts(tokens: readonly Int32Array[]): Promise<Float32Array[]>;
  /** Encode the split's captions ahead of scoreImage (idempotent; resolves when they are all encoded). */
  prepareCaptions(): Promise<void>;
  /** One score per caption of the split for image row `image`: result[c] = score(image, caption c). */
  scoreImage(image: number): Promise<Float32Array>;
  /** Seconds spent so far, by part (engines report what they have). */
  readonly seconds: { encodeCaptions: number; score: number };
  close(): Promise<void>;
}

export interface ScorerInputs {
  model: LoadedModel;
  /** The image side: regions (n, 36, D) and vGlobal (n, D), float32. */
  images: EncodedImages;
  /** The split's captions as token ids (what scoreImage ranks). */
  captionTokens: readonly Int32Array[];
  /** The tfjs backend already selected in this process (engines that use no tfjs may ignore it). */
  backend: string;
  /** Score threads; undefined = the engine's choice for the work at hand. */
  workers?: number;
  /**
   * A server: keep the main thread free for requests (score on worker threads even with one worker) and keep
   * those workers for the next query.
   */
  offMainThread: boolean;
}

export type ScorerFactory = (o: ScorerInputs) => Promise<QueryScorer>;
