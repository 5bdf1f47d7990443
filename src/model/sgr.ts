// SGR, the similarity graph reasoning module: the nodes of a pair are its global similarity vector
// (node 0) and its caption's word-level ones; each of sgr_step steps lets every node attend to the others and
// updates it, x' = relu(W (softmax(q xᵀ) x) + b) with q = Wq x + bq, k = Wk x + bk; the score reads node 0.
//
// Two rewrites that change no value: the query and key maps fold into one S×S matrix,
// q·kᵀ = x (Wqᵀ Wk) xᵀ + 1 (bq Wk) xᵀ + (terms constant along each softmax row, which cancel), a third less
// work; and the last step computes node 0 alone, the only row the score reads (the others are dead work).
// One step's forward (reasoningStep) and its hand-written backward (stepBackward) sit side by side;
// plainGraphReasoning is the reference's unfolded step in plain tf ops, what the fast path is tested against.
import * as tf from '@tensorflow/tfjs';
import { attendBackward, attendForward, type NodeLayout } from '../ops/graphAttention.js';
import type { CustomFn } from '../ops/tape.js';
import { fusedProduct, matMulT, mm } from '../ops/matmul.js';
import type { ModelConfig } from './config.js';
import { linearSpecs } from './paramSpec.js';
import type { DebugHook, SimilarityModule } from './similarityModule.js';
import type { Weights } from './weights.js';

/** The folded query-key map of step s: (Wqᵀ Wk, bq Wk). */
function queryKey(w: Weights, s: number, S: number): { qk: tf.Tensor2D; qb: tf.Tensor1D } {
  const pre = `sim_enc.SGR_module.${s}`;
  const key = w.t(`${pre}.graph_key_w.weight`) as tf.Tensor2D;
  return {
    qk: w.derived(`${pre}.qk`, () => mm(w.wT(`${pre}.graph_query_w`), key)) as tf.Tensor2D,
    qb: w.derived(`${pre}.qb`, () => mm(w.b(`${pre}.graph_query_w`).reshape([1, S]), key).reshape([S])) as tf.Tensor1D,
  };
}

/**
 * One reasoning step on the nodes x (P, N, S): q = x_R QK + qb for the R query nodes (all, or node 0 alone),
 * agg = softmax(q xᵀ) x over each pair's valid nodes, y = relu(W agg + b), (P, R, S). Its gradient is
 * stepBackward's, below (with respect to x, QK, qb, W, b).
 */
function reasoningStep(w: Weights, s: number, x: tf.Tensor3D, R: number, layout: NodeLayout): tf.Tensor3D {
  const [P, , S] = x.shape;
  const pre = `sim_enc.SGR_module.${s}.sim_graph_w`;
  const { qk, qb } = queryKey(w, s, S);
  const W = w.t(`${pre}.weight`) as tf.Tensor2D;
  const WT = w.wT(pre);
  const f = tf.customGrad(((
    xi: tf.Tensor,
    qki: tf.Tensor,
    qbi: tf.Tensor,
    Wi: tf.Tensor,
    b: tf.Tensor,
    save: tf.GradSaveFunc,
  ) => {
    const x3 = xi as tf.Tensor3D;
    const queries = R === x3.shape[1] ? x3 : tf.slice(x3, [0, 0, 0], [P, 1, S]);
    const flat = (t: tf.Tensor) => t.reshape<tf.Tensor2D>([-1, S]);
    const q = fusedProduct(flat(queries), qki as tf.Tensor2D, qbi as tf.Tensor1D).reshape<tf.Tensor3D>([P, R, S]);
    const { E, agg } = attendForward(q, x3, layout);
    const y = fusedProduct(flat(agg), WT, b as tf.Tensor1D, true).reshape([P, R, S]);
    save([x3, q, E, y, qki, Wi, layout.count]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, sq, sE, sy, sqk, sW, count] = saved;
        const st = { x: sx, q: sq, E: sE, y: sy, qk: sqk, w: sW } as StepSaved;
        return stepBackward(dy as tf.Tensor3D, st, { nCap: layout.nCap, count: count as tf.Tensor1D });
      },
    };
  }) as unknown as CustomFn);
  return f(x, qk, qb, W, w.b(pre)) as tf.Tensor3D;
}

/** What the step's forward pass keeps: its input x (P, N, S), queries q (P, R, S), attention E (P, R, N), output y. */
interface StepSaved {
  x: tf.Tensor3D;
  q: tf.Tensor3D;
  E: tf.Tensor3D;
  y: tf.Tensor3D;
  qk: tf.Tensor2D; // (S, S)
  w: tf.Tensor2D; // (S, S) sim_graph_w.weight, [out, in]
}

/**
 * The backward of reasoningStep: d(x, QK, qb, W, b) from dL/dy (P, R, S). The forward keeps x, q, the attention E
 * and y; agg is recomputed from them (one attention pass, ~N/S of the step's products) rather than kept. Each (P, ·, S) temporary is freed right after its last use (a tidy
 * would hold all ~10 of them to the end): the step's backward then adds ~4 of them to the heap at once, not ~10.
 */
function stepBackward(dy: tf.Tensor3D, s: StepSaved, layout: NodeLayout): tf.Tensor[] {
  return tf.tidy(() => {
    const [P, R, S] = s.q.shape;
    const N = s.x.shape[1];
    const flat = (t: tf.Tensor) => t.reshape<tf.Tensor2D>([-1, S]);
    const free = (...ts: tf.Tensor[]) => tf.dispose(ts);
    // y = relu(agg Wᵀ + b)
    const mask = tf.step(s.y);
    const g = flat(tf.mul(dy, mask));
    free(mask);
    const db = tf.sum(g, 0);
    const agg = attendForward(s.q, s.x, layout).agg;
    const dW = matMulT(g, flat(agg), true);
    free(agg);
    const dAgg = tf.matMul(g, s.w).reshape<tf.Tensor3D>([P, R, S]);
    free(g);
    // agg = softmax(q xᵀ) x
    const { dq, dx: dxAttention } = attendBackward(s.q, s.x, s.E, dAgg, layout);
    free(dAgg);
    // q = x_R QK + qb
    const queries = R === N ? s.x : tf.slice(s.x, [0, 0, 0], [P, 1, S]);
    const dq2 = flat(dq);
    const dqk = matMulT(flat(queries), dq2, true);
    const dqb = tf.sum(dq2, 0);
    const dxQuery = matMulT(dq2, s.qk, false, true).reshape([P, R, S]);
    free(dq, dq2);
    const dxQueryN =
      R === N
        ? dxQuery
        : tf.pad(dxQuery, [
            [0, 0],
            [0, N - R],
            [0, 0],
          ]);
    const dx = tf.add(dxAttention, dxQueryN);
    free(dxAttention, dxQuery, dxQueryN);
    return [dx, dqk, dqb, dW, db];
  });
}

/**
 * sgr_step reasoning steps over the nodes (nImg, nCap, N, S) of every image-caption pair (image-major); returns
 * node 0 after the last step, (nImg, nCap, S).
 * @param layout the valid node count of each caption (its words and the global node)
 */
export function graphReasoning(
  w: Weights,
  steps: number,
  nodes: tf.Tensor4D,
  layout: NodeLayout,
  dbg?: DebugHook,
): tf.Tensor3D {
  const [nImg, nCap, N, S] = nodes.shape;
  let x = nodes.reshape<tf.Tensor3D>([nImg * nCap, N, S]);
  for (let s = 0; s < steps; s++) {
    const R = s === steps - 1 ? 1 : N; // the last step: node 0's query alone
    x = reasoningStep(w, s, x, R, layout);
    if (dbg) dbg(`SGR_module.${s}`, x.reshape([nImg, nCap, R, S]));
  }
  return x.reshape([nImg, nCap, S]);
}

/**
 * The reference's sgr_step steps in plain tf ops: every node updated at every step, the query and key maps apart,
 * keys masked to each caption's valid nodes. Returns node 0 after the last step, (nImg, nCap, S).
 * @param valid (nCap, N) 1 for each caption's valid nodes
 */
export function plainGraphReasoning(w: Weights, steps: number, nodes: tf.Tensor4D, valid: tf.Tensor2D): tf.Tensor3D {
  const [nImg, nCap, N, S] = nodes.shape;
  const P = nImg * nCap;
  const lin = (t: tf.Tensor, pre: string) =>
    tf.add(tf.matMul(t.reshape([-1, S]), w.t(`${pre}.weight`), false, true), w.t(`${pre}.bias`)).reshape(t.shape);
  const keyMask = tf.tile(tf.mul(tf.sub(1, valid), -1e9).reshape([nCap, 1, N]), [nImg, 1, 1]);
  let h: tf.Tensor = nodes.reshape([P, N, S]);
  for (let s = 0; s < steps; s++) {
    const pre = `sim_enc.SGR_module.${s}`;
    const q = lin(h, `${pre}.graph_query_w`);
    const k = lin(h, `${pre}.graph_key_w`);
    const edges = tf.softmax(tf.add(tf.matMul(q, k, false, true), keyMask));
    h = tf.relu(lin(tf.matMul(edges, h), `${pre}.sim_graph_w`));
  }
  return tf.slice(h, [0, 0, 0], [P, 1, S]).reshape([nImg, nCap, S]);
}

const stepParams = (c: ModelConfig) =>
  Array.from({ length: c.sgrStep }, (_, s) =>
    ['graph_query_w', 'graph_key_w', 'sim_graph_w'].flatMap((m) =>
      linearSpecs(`sim_enc.SGR_module.${s}.${m}`, c.simDim, c.simDim),
    ),
  ).flat();

export const SGR: SimilarityModule = {
  name: 'SGR',
  describe: (c) => `, ${c.sgrStep} reasoning step(s)`,
  params: stepParams,
  detect(keys) {
    const steps = keys.filter((k) => /^sim_enc\.SGR_module\.\d+\.graph_query_w\.weight$/.test(k)).length;
    return steps > 0 ? { module: 'SGR', sgrStep: steps } : undefined;
  },
  ownOptions: ['sgrStep'],
  forward: (w, c, p, _training, dbg) => ({ vec: graphReasoning(w, c.sgrStep, p.nodes, p.layout, dbg) }),
  // the forward keeps x, q and y of each step (stepBackward recomputes the rest); its backward adds ~4 more
  vectorsPerToken: (c) => 6 + 2 * c.sgrStep,
  scoreWorkerGiB: 0.7,
  pairMflop: 24.4,
};
