// Adam exactly as PyTorch 1.10 steps it (β = 0.9/0.999, eps 1e-8 added to sqrt(v)/sqrt(1-β2^t), no weight
// decay), plus global-norm gradient clipping as torch.nn.utils.clip_grad_norm_. The state is kept per
// parameter name so that checkpoints can store and restore it.
import * as tf from '@tensorflow/tfjs';
import type { ParamRegistry } from '../model/params.js';
import { adamStep } from '../ops/adamStep.js';

export interface AdamState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export class Adam {
  step = 0;
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();
  constructor(
    public lr: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly eps = 1e-8,
  ) {}

  /**
   * Apply one update to every parameter that has a gradient, each gradient times `scale` if given (the clipping:
   * the same float32 product as scaling the gradients first); grads are not disposed here.
   */
  apply(reg: ParamRegistry, grads: Map<string, tf.Tensor>, scale?: number): void {
    this.step += 1;
    const bc1 = 1 - this.beta1 ** this.step;
    const bc2 = 1 - this.beta2 ** this.step;
    const scalars = {
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      sqrtBc2: Math.sqrt(bc2),
      stepSize: this.lr / bc1,
      ...(scale === undefined ? {} : { scale }),
    };
    for (const [name, g] of grads) {
      const p = reg.get(name);
      if (!this.m.has(name)) {
        this.m.set(name, tf.variable(tf.zerosLike(p), false));
        this.v.set(name, tf.variable(tf.zerosLike(p), false));
      }
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const [p1, m1, v1] = adamStep(p, g, m, v, scalars);
      p.assign(p1);
      m.assign(m1);
      v.assign(v1);
      tf.dispose([p1, m1, v1]);
    }
  }

  async exportState(): Promise<AdamState> {
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const [k, t] of this.m) m.set(k, Float32Array.from((await t.data()) as Float32Array));
    for (const [k, t] of this.v) v.set(k, Float32Array.from((await t.data()) as Float32Array));
    return { step: this.step, m, v };
  }

  importState(reg: ParamRegistry, s: AdamState): void {
    this.dispose();
    this.step = s.step;
    for (const [k, data] of s.m) {
      const shape = reg.get(k).shape;
      this.m.set(k, tf.variable(tf.tensor(data, shape), false));
      this.v.set(k, tf.variable(tf.tensor(s.v.get(k) ?? new Float32Array(data.length), shape), false));
    }
  }

  dispose(): void {
    for (const t of this.m.values()) t.dispose();
    for (const t of this.v.values()) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/**
 * The gradients' global L2 norm and, when it exceeds maxNorm, the factor that clips it (PyTorch's
 * clip_grad_norm_: coef = max/(norm+1e-6), applied only when < 1; undefined otherwise).
 */
export function clipFactor(grads: Map<string, tf.Tensor>, maxNorm: number): { norm: number; coef?: number } {
  const norm = tf.tidy(() => {
    const sq = [...grads.values()].map((g) => tf.sum(tf.square(g)));
    return Math.sqrt(tf.addN(sq).dataSync()[0]);
  });
  const coef = maxNorm / (norm + 1e-6);
  return maxNorm > 0 && coef < 1 ? { norm, coef } : { norm };
}

/**
 * Scale the gradients so that their global L2 norm is at most maxNorm (clipFactor). Returns the norm before
 * clipping and the clipped gradients (inputs disposed). A step clips inside Adam instead (Adam.apply's scale).
 */
export function clipGradNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): { norm: number; grads: Map<string, tf.Tensor> } {
  const { norm, coef } = clipFactor(grads, maxNorm);
  if (coef === undefined) return { norm, grads };
  const out = new Map<string, tf.Tensor>();
  for (const [k, g] of grads) {
    out.set(k, tf.mul(g, coef));
    g.dispose();
  }
  return { norm, grads: out };
}
