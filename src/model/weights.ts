// Read access to a model's parameters by state_dict name inside one computation. Linear weights are
// stored [out, in] as in PyTorch; `wT` hands out the (in, out) transpose that a plain 2-D product wants,
// computed once per Weights object (so the gradient still flows to the [out, in] parameter).
import * as tf from '@tensorflow/tfjs';

export class Weights {
  private cache = new Map<string, tf.Tensor>();
  /**
   * Derived tensors live until dispose(), whatever tf.tidy scope made them (a model block frees its
   * intermediates when it returns, and the next block, or the next caption bucket, may use the same transpose).
   * Call dispose() when done: after a forward pass (a gradient tape keeps its own references), or after scoring.
   * @param lookup name -> tensor (a registry variable, or a tensor passed to tf.grads)
   */
  constructor(private readonly lookup: (name: string) => tf.Tensor) {}

  /** Read access to a registry's variables (params.ts), or to anything else that holds tensors by name. */
  static of(reg: { get(name: string): tf.Tensor }): Weights {
    return new Weights((n) => reg.get(n));
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
      v = tf.keep(make());
      this.cache.set(key, v);
    }
    return v;
  }

  dispose(): void {
    for (const v of this.cache.values()) v.dispose();
    this.cache.clear();
  }
}
