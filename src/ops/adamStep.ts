// The arithmetic of one Adam step for one parameter (train/adam.ts owns the state and the schedule). On wasm
// one kernel pass (kernels/vsl_kernels.c adam_step) where the tf ops make thirteen passes over the parameter:
// the update of every parameter of the model ran ~0.26 s a step on the main thread (docs/performance.md). The
// kernel does the same float32 operations in the same order, so both paths give the same bits.
import * as tf from '@tensorflow/tfjs';
import { kernelsOf, ptr, type WasmBackendInternals } from './kernels/module.js';

/** The step's constants: β1, β2, eps, sqrt(1 - β2^t) and lr / (1 - β1^t); `scale`: the gradient's clipping factor. */
export interface AdamScalars {
  beta1: number;
  beta2: number;
  eps: number;
  sqrtBc2: number;
  stepSize: number;
  scale?: number;
}

const KERNEL = 'VslAdamStep';

/** Register the wasm kernel (once per thread, after the wasm backend is registered). */
export function registerAdamKernel(): void {
  if (tf.getKernel(KERNEL, 'wasm')) return;
  tf.registerKernel({
    kernelName: KERNEL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as unknown as WasmBackendInternals;
      const { p, g, m, v } = inputs as Record<string, tf.TensorInfo>;
      const s = attrs as unknown as AdamScalars;
      const out = [p, m, v].map((t) => b.makeOutput(t.shape, 'float32'));
      kernelsOf(b).adam_step(
        tf.util.sizeFromShape(p.shape),
        ptr(b, p),
        ptr(b, g),
        ptr(b, m),
        ptr(b, v),
        ...(out.map((t) => ptr(b, t)) as [number, number, number]),
        s.beta1,
        1 - s.beta1,
        s.beta2,
        1 - s.beta2,
        s.sqrtBc2,
        s.eps,
        s.stepSize,
        s.scale === undefined ? 0 : 1,
        s.scale ?? 1,
      );
      return out;
    },
  });
}

/** New values of the parameter p and its moments m, v after gradient g (times s.scale if given; all the same shape; inputs kept). */
export function adamStep(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  s: AdamScalars,
): [p1: tf.Tensor, m1: tf.Tensor, v1: tf.Tensor] {
  if (tf.getBackend() === 'wasm' && [p, g, m, v].every((t) => t.dtype === 'float32'))
    return tf.engine().runKernel(KERNEL, { p, g, m, v }, s as unknown as tf.NamedAttrMap) as unknown as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
    ];
  return tf.tidy(() => {
    if (s.scale !== undefined) g = tf.mul(g, s.scale);
    const m1 = tf.add(tf.mul(m, s.beta1), tf.mul(g, 1 - s.beta1));
    const v1 = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(g), 1 - s.beta2));
    const denom = tf.add(tf.div(tf.sqrt(v1), s.sqrtBc2), s.eps);
    return [tf.sub(p, tf.mul(tf.div(m1, denom), s.stepSize)), m1, v1];
  });
}
