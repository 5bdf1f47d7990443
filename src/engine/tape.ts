// Gradients through tfjs' engine, with two things tf.grads does not offer: a parameter with no path to
// the output gets a zero gradient instead of an exception (SGR's graph_key_w.bias, which the folded
// query-key map makes cancel exactly), and the call may run inside another gradient's backward pass.
import * as tf from '@tensorflow/tfjs';

/** The function type tf.customGrad takes (its typings want a fixed arity; ours vary). */
export type CustomFn = Parameters<typeof tf.customGrad>[0];

interface EngineInternals {
  state: { activeTape: unknown; gradientDepth: number };
  gradients: (
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ) => { value: tf.Tensor; grads: (tf.Tensor | null)[] };
}

/**
 * Value of the scalar f(...xs) and its gradients (zeros where f does not depend on an x).
 * tfjs keeps one active tape and clears it after any gradient call at depth 0, so a call made inside a
 * customGrad's gradient (`nested`) saves and restores the outer tape around it.
 */
export function valueAndGradients(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
  nested = false,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  const engine = tf.engine() as unknown as EngineInternals;
  const outer = engine.state.activeTape;
  try {
    const { value, grads } = engine.gradients(() => f(...xs), xs, undefined, true);
    return { value, grads: grads.map((g, i) => g ?? tf.zerosLike(xs[i])) };
  } finally {
    if (nested) engine.state.activeTape = outer;
  }
}

/**
 * valueAndGradients under a tape of its own, called from inside another gradient's forward pass (the training
 * worker differentiates its share of the scores while its caption encoder's tape is still recording). tfjs
 * would append to the outer tape and keep every saved tensor of the inner pass until the outer one ends; here
 * the inner pass gets a fresh tape, frees it when done, and the outer tape goes on as it was.
 */
export function isolatedGradients(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
): { value: tf.Tensor; grads: tf.Tensor[] } {
  const state = (tf.engine() as unknown as EngineInternals).state;
  const { activeTape, gradientDepth } = state;
  state.gradientDepth = 0;
  try {
    return valueAndGradients(f, xs);
  } finally {
    state.activeTape = activeTape;
    state.gradientDepth = gradientDepth;
  }
}
