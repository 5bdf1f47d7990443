// The one interface between retrieval (vsl query, vsl serve) and the engine that computes scores, so that an
// engine plugs in by one file: tfjs (tfjsScorer.ts) and ONNX Runtime (onnxScorer.ts). A scorer is
// opened on a model and the split's image side (from an index or just encoded) and answers both directions;
// engines.ts maps --engine names to the factories.
import type { LoadedModel } from '../eval/loadModel.js';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { captionLayout, type EncodedCaptions, type EncodedImages } from '../runtime/encode.js';
import { VslError } from '../util/errors.js';

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

/** Captions encoded between two yields to the event loop (one encoding batch). */
export const CAPTION_CHUNK = 128;

/**
 * The split's captions encoded one batch at a time, yielding to the event loop between batches so that a server
 * encoding them in the background still answers requests; the same batches whichever engine encodes them.
 * `before` runs ahead of each batch (a closed scorer throws there), `done` after it with the captions so far.
 */
export async function encodeInBatches(
  tokens: readonly Int32Array[],
  D: number,
  encode: (part: Int32Array[]) => EncodedCaptions | Promise<EncodedCaptions>,
  before: () => void,
  done: (n: number) => void,
): Promise<EncodedCaptions> {
  const out = captionLayout(tokens, D);
  const { n, offsets, words, tGlobal } = out;
  for (let s = 0; s < n; s += CAPTION_CHUNK) {
    before();
    const e = Math.min(n, s + CAPTION_CHUNK);
    const part = await encode(tokens.slice(s, e));
    words.set(part.words, offsets[s] * D);
    tGlobal.set(part.tGlobal, s * D);
    done(e);
    if (e < n) await yieldToLoop();
  }
  return out;
}

/** An image row of the split, or a VslError naming the range. */
export function checkImageRow(image: number, nImages: number): void {
  if (!Number.isSafeInteger(image) || image < 0 || image >= nImages)
    throw new VslError(`image: expected a row from 0 to ${nImages - 1}, found ${image}`);
}
