// A synthetic SCAN-precomp dataset with planted cross-modal structure, for tests, demos and smoke training.
//
// World (from the seed): 60 concept words, each with a non-negative "region prototype" in img_dim, plus a few
// shared background prototypes. An image draws 2-4 distinct concepts (no two images of a split share the same
// set); 3-6 of its 36 regions per concept are ReLU(gain * prototype + noise), the other regions are
// ReLU(gain * background + noise). Its 5 captions are templated sentences naming all its concepts in a random
// order with filler words ("a", "the", "with", "next to", ...) and random, image-independent adjectives. A model
// that learns to match concept words with prototype regions reaches high recall; an untrained one stays at chance.
//
// Splits: train (N images), dev (M), test (M), testall (5M, whose first M images are exactly test's, as in
// COCO), plus <out>/<name>_vocab.json built from train+dev with threshold 4. Features are streamed through the
// .npy writer image by image, so a COCO-sized split needs bounded memory. All randomness is pure-rand's
// xoroshiro128plus: same options -> identical bytes.
import fs from 'node:fs';
import path from 'node:path';
import prand from 'pure-rand';
import { fileError, VslError } from '../util/errors.js';
import { tempNameFor } from '../util/atomicFile.js';
import { createNpyWriter } from '../io/npyWrite.js';
import { countTokens, saveVocab, vocabFromCounts, type Vocab } from './vocab.js';

export const CONCEPT_WORDS: readonly string[] = [
  'dog',
  'cat',
  'horse',
  'bird',
  'cow',
  'sheep',
  'elephant',
  'giraffe',
  'zebra',
  'bear',
  'bicycle',
  'motorcycle',
  'car',
  'bus',
  'train',
  'truck',
  'boat',
  'airplane',
  'skateboard',
  'surfboard',
  'kite',
  'umbrella',
  'bench',
  'clock',
  'vase',
  'bottle',
  'cup',
  'bowl',
  'banana',
  'apple',
  'pizza',
  'cake',
  'sandwich',
  'chair',
  'couch',
  'bed',
  'table',
  'laptop',
  'phone',
  'book',
  'tree',
  'flower',
  'fence',
  'window',
  'door',
  'lamp',
  'guitar',
  'ball',
  'frisbee',
  'hat',
  'shirt',
  'backpack',
  'suitcase',
  'sign',
  'bridge',
  'tower',
  'mountain',
  'river',
  'beach',
  'road',
];
const ADJECTIVES = ['small', 'large', 'old', 'new', 'little', 'big', 'red', 'blue', 'white', 'black'];
const DETERMINERS = ['a', 'the', 'a', 'the', 'some', 'one'];
const CONNECTORS = ['with', 'next to', 'on', 'near', 'and', 'beside', 'behind', 'under', 'in front of'];
const OPENERS = ['', '', '', 'there is', 'a photo of', 'an image of', 'a picture showing'];

const SYNTH_REGIONS = 36;
const N_BACKGROUNDS = 8;
const NOISE = 0.35;

export interface SynthOptions {
  /** Data path: the dataset goes to <out>/<name>/, the vocabulary to <out>/<name>_vocab.json. */
  out: string;
  name: string;
  /** Train images. */
  images: number;
  /** Dev and test images (testall has 5x as many). */
  evalImages?: number;
  seed: number;
  imgDim?: number;
  /** Called after each split is written. */
  onSplit?: (info: SynthSplitInfo) => void;
}

interface SynthSplitInfo {
  split: string;
  nImages: number;
  nCaptions: number;
  imagesPath: string;
  captionsPath: string;
}

export interface SynthResult {
  dir: string;
  vocabPath: string;
  vocab: Vocab;
  splits: SynthSplitInfo[];
}

// ---------------------------------------------------------------------------------------------------------
// Randomness

/** 32-bit mixing of several integers into one seed (murmur3 finaliser steps). */
function mixSeed(...xs: number[]): number {
  let h = 0x9e3779b9 | 0;
  for (const x of xs) {
    let k = Math.imul(x | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

class Rng {
  private g: prand.RandomGenerator;
  constructor(seed: number) {
    this.g = prand.xoroshiro128plus(seed | 0);
  }
  u32(): number {
    return this.g.unsafeNext() >>> 0;
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.float() * xs.length)];
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
}

/** 65536 standard-normal samples (Box-Muller from a fixed stream), indexed by 16 random bits for speed. */
const GAUSS = (() => {
  const r = new Rng(0x5eed);
  const t = new Float32Array(65536);
  for (let i = 0; i < t.length; i += 2) {
    const u1 = (r.u32() + 1) / 4294967297;
    const u2 = r.float();
    const m = Math.sqrt(-2 * Math.log(u1));
    t[i] = m * Math.cos(2 * Math.PI * u2);
    t[i + 1] = m * Math.sin(2 * Math.PI * u2);
  }
  return t;
})();

// ---------------------------------------------------------------------------------------------------------
// World and images

interface World {
  seed: number;
  imgDim: number;
  prototypes: Float32Array[]; // one per concept
  backgrounds: Float32Array[];
}

function makeWorld(seed: number, imgDim: number): World {
  const r = new Rng(mixSeed(seed, 0x776f726c));
  const vec = (scale: number) => {
    const v = new Float32Array(imgDim);
    for (let d = 0; d < imgDim; d++) v[d] = Math.max(0, GAUSS[r.u32() & 0xffff]) * scale;
    return v;
  };
  return {
    seed,
    imgDim,
    prototypes: CONCEPT_WORDS.map(() => vec(1.5)),
    backgrounds: Array.from({ length: N_BACKGROUNDS }, () => vec(0.8)),
  };
}

/** The world of a seed: concept words with their region prototypes, and the shared background prototypes. */
export function synthWorld(
  seed: number,
  imgDim = 2048,
): { concepts: readonly string[]; prototypes: Float32Array[]; backgrounds: Float32Array[] } {
  const w = makeWorld(seed, imgDim);
  return { concepts: CONCEPT_WORDS, prototypes: w.prototypes, backgrounds: w.backgrounds };
}

/** An image's identity: which split stream and index its randomness comes from, and its concepts. */
interface ImagePlan {
  key: number;
  index: number;
  concepts: number[];
}

const SPLIT_KEYS: Record<string, number> = { train: 1, dev: 2, test: 3, testall: 4 };

/** Draw concept sets for n images, avoiding sets already in `used` while that is possible. */
function planImages(seed: number, split: string, n: number, used: Set<string>, startIndex = 0): ImagePlan[] {
  const key = SPLIT_KEYS[split];
  const r = new Rng(mixSeed(seed, key, 0x706c616e));
  const out: ImagePlan[] = [];
  for (let i = 0; i < n; i++) {
    let concepts: number[] = [];
    for (let attempt = 0; attempt < 200; attempt++) {
      const k = r.int(2, 4);
      const pool = r.shuffle(CONCEPT_WORDS.map((_, c) => c));
      concepts = pool.slice(0, k);
      const id = [...concepts].sort((a, b) => a - b).join(',');
      if (!used.has(id)) {
        used.add(id);
        break;
      }
    }
    out.push({ key, index: startIndex + i, concepts });
  }
  return out;
}

/** Fill `out` (36 x imgDim) with the image's region features. */
function renderImage(w: World, plan: ImagePlan, out: Float32Array): void {
  const r = new Rng(mixSeed(w.seed, plan.key, plan.index, 0x696d67));
  const D = w.imgDim;
  const sources: Float32Array[] = [];
  for (const c of plan.concepts) {
    const nReg = r.int(3, 6);
    for (let j = 0; j < nReg; j++) sources.push(w.prototypes[c]);
  }
  while (sources.length < SYNTH_REGIONS) sources.push(w.backgrounds[r.int(0, N_BACKGROUNDS - 1)]);
  r.shuffle(sources);
  for (let reg = 0; reg < SYNTH_REGIONS; reg++) {
    const base = sources[reg];
    const gain = 0.7 + 0.6 * r.float();
    const o = reg * D;
    for (let d = 0; d < D; d += 2) {
      const bits = r.u32();
      const a = gain * base[d] + NOISE * GAUSS[bits & 0xffff];
      out[o + d] = a > 0 ? a : 0;
      if (d + 1 < D) {
        const b = gain * base[d + 1] + NOISE * GAUSS[bits >>> 16];
        out[o + d + 1] = b > 0 ? b : 0;
      }
    }
  }
}

/** The image's 5 captions. */
function captionsFor(seed: number, plan: ImagePlan): string[] {
  const r = new Rng(mixSeed(seed, plan.key, plan.index, 0x636170));
  const caps: string[] = [];
  for (let k = 0; k < 5; k++) {
    const order = r.shuffle([...plan.concepts]);
    const parts: string[] = [];
    const opener = r.pick(OPENERS);
    if (opener) parts.push(opener);
    order.forEach((c, i) => {
      if (i > 0) parts.push(r.pick(CONNECTORS));
      parts.push(r.pick(DETERMINERS));
      if (r.float() < 0.3) parts.push(r.pick(ADJECTIVES));
      parts.push(CONCEPT_WORDS[c]);
    });
    if (r.float() < 0.6) parts.push('.');
    caps.push(parts.join(' '));
  }
  return caps;
}

// ---------------------------------------------------------------------------------------------------------
// Writing

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min)
    throw new VslError(`synth: ${name}: expected an integer >= ${min}, found ${v}`);
}

function writeSplit(
  w: World,
  dir: string,
  split: string,
  plans: ImagePlan[],
  counts: Map<string, number> | null,
): SynthSplitInfo {
  const imagesPath = path.join(dir, `${split}_ims.npy`);
  const captionsPath = path.join(dir, `${split}_caps.txt`);
  const D = w.imgDim;
  const perImage = SYNTH_REGIONS * D;
  const batch = Math.max(1, Math.min(64, Math.floor((16 << 20) / (perImage * 4))));
  const buf = new Float32Array(batch * perImage);
  const writer = createNpyWriter(imagesPath, [plans.length, SYNTH_REGIONS, D], '<f4');
  const capTmp = tempNameFor(captionsPath);
  let capFd: number;
  try {
    capFd = fs.openSync(capTmp, 'w');
  } catch (e) {
    writer.abort();
    throw fileError(captionsPath, e, 'create');
  }
  try {
    for (let i = 0; i < plans.length; i += batch) {
      const n = Math.min(batch, plans.length - i);
      let text = '';
      for (let j = 0; j < n; j++) {
        const plan = plans[i + j];
        renderImage(w, plan, buf.subarray(j * perImage, (j + 1) * perImage));
        const caps = captionsFor(w.seed, plan);
        if (counts) countTokens(caps, counts);
        text += caps.join('\n') + '\n';
      }
      writer.append(n === batch ? buf : buf.subarray(0, n * perImage));
      fs.writeSync(capFd, text);
    }
    writer.close();
    fs.closeSync(capFd);
    fs.renameSync(capTmp, captionsPath);
  } catch (e) {
    writer.abort();
    try {
      fs.closeSync(capFd);
    } catch {
      /* already closed */
    }
    fs.rmSync(capTmp, { force: true });
    throw fileError(captionsPath, e, 'write'); // (a VslError from the .npy writer passes through as it is)
  }
  return { split, nImages: plans.length, nCaptions: 5 * plans.length, imagesPath, captionsPath };
}

/** Generate the whole dataset (train, dev, test, testall and the vocabulary). */
export function generateSynth(opts: SynthOptions): SynthResult {
  const M = opts.evalImages ?? 100;
  const D = opts.imgDim ?? 2048;
  checkCount('images', opts.images, 1);
  checkCount('eval images', M, 1);
  checkCount('img_dim', D, 1);
  if (!Number.isSafeInteger(opts.seed)) throw new VslError(`synth: seed: expected an integer, found ${opts.seed}`);
  if (!opts.name || opts.name.includes('/') || opts.name.includes('\\')) {
    throw new VslError(`synth: name: expected a data name such as f30k_precomp, found ${JSON.stringify(opts.name)}`);
  }
  const dir = path.join(opts.out, opts.name);
  fs.mkdirSync(dir, { recursive: true });
  const world = makeWorld(opts.seed, D);

  const train = planImages(opts.seed, 'train', opts.images, new Set());
  const dev = planImages(opts.seed, 'dev', M, new Set());
  const test = planImages(opts.seed, 'test', M, new Set());
  const testUsed = new Set(test.map((p) => [...p.concepts].sort((a, b) => a - b).join(',')));
  const testall = [...test, ...planImages(opts.seed, 'testall', 4 * M, testUsed, M)];

  const counts = new Map<string, number>();
  const splits: SynthSplitInfo[] = [];
  for (const [split, plans, count] of [
    ['train', train, true],
    ['dev', dev, true],
    ['test', test, false],
    ['testall', testall, false],
  ] as const) {
    const info = writeSplit(world, dir, split, plans, count ? counts : null);
    splits.push(info);
    opts.onSplit?.(info);
  }
  const vocab = vocabFromCounts(counts, 4);
  const vocabPath = path.join(opts.out, `${opts.name}_vocab.json`);
  saveVocab(vocabPath, vocab);
  return { dir, vocabPath, vocab, splits };
}
