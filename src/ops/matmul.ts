// 2-D products whose gradients stay on the fast kernel. Under tfjs-wasm's own XNNPACK product only a plain 2-D
// `a @ b` is fast; its transposeA/B flags fall to a generic kernel many times slower (docs/backends.md has the
// rates), so without vsl's wasm product (ops/gemm.ts) the gradients here transpose explicitly (same values).
import * as tf from '@tensorflow/tfjs';
import type { CustomFn } from './tape.js';
import { productsTakeTransposes } from './gemm.js';

/**
 * aᵀ b (transA) or a bᵀ (transB) for 2-D a, b: the product's own flags where they run at full speed (vsl's wasm
 * product, ops/gemm.ts, and the other backends); an explicit transpose under tfjs-wasm's XNNPACK product, whose
 * flags fall to a generic loop.
 */
export function matMulT(a: tf.Tensor2D, b: tf.Tensor2D, transA = false, transB = false): tf.Tensor2D {
  if (tf.getBackend() === 'wasm' && !productsTakeTransposes())
    return tf.matMul(transA ? tf.transpose(a) : a, transB ? tf.transpose(b) : b);
  return tf.matMul(a, b, transA, transB);
}

/** Plain 2-D product (n,k)@(k,m) whose gradient uses explicit transposes (fast on wasm, same values). */
export const mm = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    // tfjs runs a customGrad's gradient outside any tidy scope: without this one the transposed copies
    // would live until the whole backward pass ends (GiBs for the GRU's recurrent weight, step by step).
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const g = dy as tf.Tensor2D;
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [matMulT(g, sb, false, true), matMulT(sa, g, true)];
      }),
  };
}) as unknown as CustomFn) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

export interface AffineOptions {
  /** added to every row (fused into the product on wasm) */
  bias?: tf.Tensor1D;
  /** relu after the bias (fused too) */
  relu?: boolean;
  /** false when x is data (the image features): a zero tensor replaces a product as large as the forward */
  inputGrad?: boolean;
}

/**
 * act(x @ right + bias), differentiable with respect to x, `param` and the bias. `param` is `right` itself
 * (layout 'in-out'), or the (out, in) matrix whose transpose `right` is (layout 'out-in', PyTorch's Linear
 * weight: dx = dy @ w needs no transpose of the weight, which for the GRU's recurrent 1024x3072 matrix would
 * otherwise be made at every step of the backward pass; `right` is then not differentiated). One fused product
 * in the forward pass, and the op keeps only x (and its output, for the relu), where a product, a bias add and a
 * relu as separate ops would keep three tensors the size of the output.
 */
/**
 * tfjs-wasm's fused product checks the rank of the bias's buffer as it was created, not of the tensor: a rank-1
 * view of a (1, S) product is refused. Such a bias gets a buffer of its own (S values).
 */
function rank1Buffer(bias: tf.Tensor1D): tf.Tensor1D {
  if (tf.getBackend() !== 'wasm') return bias;
  const data = (tf.backend() as unknown as { dataIdMap: { get(id: unknown): { shape: number[] } } }).dataIdMap.get(
    bias.dataId,
  );
  return data.shape.length === 1 ? bias : tf.add(bias, 0);
}

/**
 * act(a @ b + bias) for 2-D a, b as one kernel call. tf.fused.matMul itself falls back to three separate ops
 * (product, add, relu) while a gradient tape records, which is when it matters most here; the kernel is called
 * directly instead (the callers differentiate it themselves).
 */
export function fusedProduct(a: tf.Tensor2D, b: tf.Tensor2D, bias?: tf.Tensor1D, relu = false): tf.Tensor2D {
  const [m, k] = a.shape;
  const n = b.shape[1];
  const out = tf
    .engine()
    .runKernel<tf.Tensor3D>(
      '_FusedMatMul',
      { a: a.reshape([1, m, k]), b: b.reshape([1, k, n]), ...(bias ? { bias: rank1Buffer(bias) } : {}) },
      { transposeA: false, transposeB: false, activation: relu ? 'relu' : 'linear' },
    );
  return out.reshape([m, n]);
}

function fusedAffine(
  x: tf.Tensor2D,
  param: tf.Tensor2D,
  right: tf.Tensor2D,
  layout: 'in-out' | 'out-in',
  o: AffineOptions,
): tf.Tensor2D {
  const inputs: tf.Tensor[] = [x, param, ...(o.bias ? [o.bias] : [])];
  const f = tf.customGrad((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [a] = args as tf.Tensor2D[];
    const value = fusedProduct(a, layout === 'in-out' ? (args[1] as tf.Tensor2D) : right, o.bias, o.relu);
    save(o.relu ? [a, args[1] as tf.Tensor2D, value] : [a, args[1] as tf.Tensor2D]);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sa, sp, sy] = saved as tf.Tensor2D[];
          const g = (o.relu ? tf.mul(dy as tf.Tensor, tf.step(sy)) : dy) as tf.Tensor2D;
          const dx =
            o.inputGrad === false
              ? tf.zerosLike(sa)
              : layout === 'out-in'
                ? tf.matMul(g, sp)
                : matMulT(g, sp, false, true);
          const dp = layout === 'out-in' ? matMulT(g, sa, true) : matMulT(sa, g, true);
          return o.bias ? [dx, dp, tf.sum(g, 0)] : [dx, dp];
        }),
    };
  });
  return f(...inputs);
}

/**
 * act(x @ wT + bias) for a Linear weight `w` (out, in) in PyTorch's layout; `wT` is its transpose (in, out), made
 * once by the caller and not differentiated: the gradient goes to `w`.
 */
export function affineW(x: tf.Tensor2D, w: tf.Tensor2D, wT: tf.Tensor2D, o: AffineOptions = {}): tf.Tensor2D {
  return fusedAffine(x, w, wT, 'out-in', o);
}
