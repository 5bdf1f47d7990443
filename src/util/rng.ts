// A seeded generator (pure-rand's xoroshiro128+) with a serialisable state, so that a resumed run draws
// the same numbers as an uninterrupted one.
import prand from 'pure-rand';

export class Rng {
  private g: prand.RandomGenerator;
  constructor(seedOrState: number | readonly number[]) {
    this.g =
      typeof seedOrState === 'number'
        ? prand.xoroshiro128plus(seedOrState | 0)
        : prand.xoroshiro128plus.fromState(seedOrState);
  }
  state(): number[] {
    return [...this.g.getState()];
  }
  /** Uniform in [0, 1) with 32 random bits. */
  float(): number {
    return (this.g.unsafeNext() >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  /** A 31-bit seed for tf ops that take one (dropout masks). */
  seed(): number {
    return this.g.unsafeNext() >>> 1;
  }
  fillUniform(out: Float32Array, lo: number, hi: number): Float32Array {
    const w = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + w * this.float();
    return out;
  }
  /** Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

/** Deterministic 31-bit seed from integers (so a resumed run derives the same streams). */
export function mixSeed(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x | 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 1;
}

/**
 * The seed of one random site of a step (a dropout mask), from the step's seed and the site's name: the same
 * whichever thread draws it, and in whatever order the sites run.
 */
export function siteSeed(stepSeed: number, site: string): number {
  let h = 0x811c9dc5; // FNV-1a over the name
  for (let i = 0; i < site.length; i++) h = Math.imul(h ^ site.charCodeAt(i), 0x01000193);
  return mixSeed(stepSeed, h);
}
