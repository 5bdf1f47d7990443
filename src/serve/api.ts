// The JSON API of `vsl serve`: its parameters checked strictly (a typo is a 400 naming the parameter, not a
// silent default), its answers built from Retrieval (the same ranking as `vsl query`), each query run through the
// queue. Errors are HttpError: a status and a one-line message, never a stack.
import type { Retrieval } from '../query/retrieval.js';
import type { JobQueue } from './queue.js';
import type { Pictures } from './pictures.js';

export const MAX_K = 100;
export const DEFAULT_K = 10;
export const MAX_TEXT = 1000;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ApiContext {
  retrieval: Retrieval;
  queue: JobQueue;
  pictures: Pictures;
}

/** The query's parameters: only `allowed` ones, each at most once. */
function params(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of url.searchParams) {
    if (!allowed.includes(k))
      throw new HttpError(
        400,
        `unknown parameter ${JSON.stringify(k.slice(0, 40))}: expected ${allowed.join(', ') || 'none'}`,
      );
    if (out.has(k)) throw new HttpError(400, `${k}: expected once, found more than once`);
    out.set(k, v);
  }
  return out;
}

/** k: a whole number from 1 to MAX_K (default DEFAULT_K). */
function parseK(v: string | undefined): number {
  if (v === undefined) return DEFAULT_K;
  const k = /^[0-9]{1,3}$/.test(v) ? Number(v) : NaN;
  if (!(k >= 1 && k <= MAX_K))
    throw new HttpError(400, `k: expected a whole number from 1 to ${MAX_K}, found ${JSON.stringify(v.slice(0, 20))}`);
  return k;
}

/** An image row from a path segment (as sent: still percent-encoded): digits only, within the split. */
export function parseRow(segment: string, nImages: number): number {
  if (!/^(0|[1-9][0-9]{0,8})$/.test(segment))
    throw new HttpError(
      400,
      `image: expected a row number from 0 to ${nImages - 1}, found ${JSON.stringify(segment.slice(0, 40))}`,
    );
  const r = Number(segment);
  if (r >= nImages) throw new HttpError(404, `image: no row ${r}; the split has rows 0 to ${nImages - 1}`);
  return r;
}

function parseText(v: string | undefined): string {
  if (v === undefined) throw new HttpError(400, 'text: expected a sentence to search with (?text=...)');
  const n = [...v].length;
  if (n > MAX_TEXT) throw new HttpError(400, `text: expected at most ${MAX_TEXT} characters, found ${n}`);
  if (v.trim() === '') throw new HttpError(400, 'text: expected a sentence, found only spaces');
  return v;
}

const rounded = (s: number) => Number(s.toFixed(6));

/** GET /api/search?text=...&k=K: the split's images ranked for a sentence. */
export async function search(ctx: ApiContext, url: URL, signal: AbortSignal): Promise<object> {
  const p = params(url, ['text', 'k']);
  const text = parseText(p.get('text'));
  const k = parseK(p.get('k'));
  const t0 = performance.now();
  const [q] = await ctx.queue.run(() => ctx.retrieval.rankImages([text], k), signal);
  return {
    text,
    tokens: q.tokens,
    unknown: q.unknown,
    k,
    nImages: ctx.retrieval.nImages,
    groundTruth: q.groundTruth,
    results: q.hits.map((h) => ({
      image: h.image,
      score: h.score,
      captions: h.captions,
      picture: ctx.pictures.url(h.image),
      groundTruth: h.groundTruth,
    })),
    seconds: rounded((performance.now() - t0) / 1000),
  };
}

/** GET /api/image/I?k=K: the split's captions ranked for image row I, its own marked. */
export async function imageCaptions(ctx: ApiContext, segment: string, url: URL, signal: AbortSignal) {
  const r = ctx.retrieval;
  const image = parseRow(segment, r.nImages);
  const k = parseK(params(url, ['k']).get('k'));
  const progress = r.captionsProgress();
  if (progress.done < progress.total)
    throw new HttpError(
      503,
      `the split's captions are being encoded for image queries (${progress.done} of ${progress.total}); try again shortly`,
      { 'Retry-After': '5' },
    );
  const t0 = performance.now();
  const q = await ctx.queue.run(() => r.rankCaptions(image, k), signal);
  return {
    image,
    picture: ctx.pictures.url(image),
    captions: q.captions,
    k,
    nCaptions: r.split.nCaptions,
    firstGroundTruthRank: q.firstGroundTruthRank,
    results: q.hits.map((h) => ({
      caption: h.caption,
      image: h.image,
      score: h.score,
      text: h.text,
      groundTruth: h.groundTruth,
    })),
    seconds: rounded((performance.now() - t0) / 1000),
  };
}

/** GET /api/info: what is served (the page's header), and whether image queries are ready. */
export function info(ctx: ApiContext, url: URL): object {
  params(url, []);
  const r = ctx.retrieval;
  return {
    model: { file: r.model.path, module: r.model.config.module, epoch: r.model.epoch },
    data: { dataName: r.split.dataName, split: r.split.split },
    nImages: r.nImages,
    nCaptions: r.split.nCaptions,
    index: r.index?.dir ?? null,
    engine: r.engine ?? null,
    pictures: ctx.pictures.count,
    captionsEncoded: r.captionsProgress().done,
    waiting: ctx.queue.waiting,
    limits: { k: MAX_K, text: MAX_TEXT },
  };
}
