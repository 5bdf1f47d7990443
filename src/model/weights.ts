// Read access to a model's parameters by state_dict name inside one computation. Linear weights are
// stored [out, in] as in PyTorch; `wT` hands out the (in, out) transpose that a plain 2-D product wants,
// computed once per Weights object (so the gradient still flows to the [out, in] parameter).
import * as tf from '@tensorflow/tfjs';
import type { ParamRegistry } from './params.js';

export class Weights {
  private cache = new Map<string, tf.Tensor>();
  /**
   * @param lookup name -> tensor (a registry variable, or a tensor passed to tf.grads)
   * @param persistent keep derived tensors alive across tf.tidy scopes (evaluation); call dispose() after
   */
  constructor(
    private readonly lookup: (name: string) => tf.Tensor,
    private readonly persistent = false,
  ) {}

  static of(reg: ParamRegistry, persistent = false): Weights {
    return new Weights((n) => reg.get(n), persistent);
  }

  t(name: string): tf.Tensor {
    return this.lookup(name);
  }

  /** Weight of the Linear `prefix`, transposed to (in, out). */
  wT(prefix: string): tf.Tensor2D {
    return this.derived(`${prefix}.weight^T`, () => tf.transpose(this.lookup(`${prefix}.weight`))) as tf.Tensor2D;
  }

  b(prefix: string): tf.Tensor1D {
    return this.lookup(`${prefix}.bias`) as tf.Tensor1D;
  }

  /** A tensor computed from the weights once per Weights object (e.g. folded query-key maps). */
  derived(key: string, make: () => tf.Tensor): tf.Tensor {
    let v = this.cache.get(key);
    if (!v) {
      v = make();
      if (this.persistent) tf.keep(v);
      this.cache.set(key, v);
    }
    return v;
  }

  dispose(): void {
    if (this.persistent) for (const v of this.cache.values()) v.dispose();
    this.cache.clear();
  }
}
