// Gradients through tfjs' engine, with two things tf.grads does not offer: a parameter with no path to
// the output gets a zero gradient instead of an exception (SGR's graph_key_w.bias, which the folded
// query-key map makes cancel exactly), and the call may run inside another gradient's backward pass.
import * as tf from '@tensorflow/tfjs';

/** The function type tf.customGrad takes (its typings want a fixed arity; ours vary). */
export type CustomFn = Parameters<typeof tf.customGrad>[0];

interface TapeNode {
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  gradients: (
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ) => { value: tf.Tensor; grads: (tf.Tensor | null)[] };
}

/**
 * Let the backward pass free memory as it goes. tfjs keeps every tensor saved for the gradient, and every
 * gradient flowing between nodes, until the whole backward pass ends, so its peak is the forward's saved state
 * plus all of its gradients. A node's saved tensors and the gradients of its outputs are needed by that node
 * alone (the tape is in topological order, so all of a tensor's consumers run before its producer): here they
 * are disposed as soon as the backward pass has moved on to the next node. A gradient that a node hands on
 * unchanged to one of its inputs (the same tensor object) is left alone. Disposing twice is a no-op, so tfjs'
 * own clean-up at the end stays as it is.
 */
function freeAsYouGo(tape: TapeNode[]): void {
  let pending: (() => void) | null = null;
  for (const node of tape) {
    const grad = node.gradient;
    if (!grad) continue;
    node.gradient = (dys) => {
      pending?.();
      const g = grad(dys);
      const handedOn = new Set<tf.Tensor>();
      const watched: Record<string, () => tf.Tensor> = {};
      for (const [k, fn] of Object.entries(g)) {
        watched[k] = () => {
          const r = fn();
          handedOn.add(r);
          return r;
        };
      }
      pending = () => {
        for (const d of dys) if (d && !handedOn.has(d)) d.dispose();
        for (const t of node.saved ?? []) t.dispose();
      };
      return watched;
    };
  }
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
    const taped = () => {
      const y = f(...xs);
      freeAsYouGo(engine.state.activeTape ?? []);
      return y;
    };
    const { value, grads } = engine.gradients(taped, xs, undefined, true);
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
