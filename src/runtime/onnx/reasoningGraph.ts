// The ONNX blocks after the nodes: SGR (sgr.ts) or SAF (saf.ts) turns each pair's nodes (nImg, nCap, N, S) into
// one vector (nImg·nCap, S), and the score head (similarity.ts) into the score. Eval mode.
//   SGR: sgr_step steps x' = relu(W softmax(q xᵀ + mask) x + b), q = x QK + qb with the query and key maps folded
//        into one S x S matrix at export (hostWeights.ts, as sgr.ts); the last step computes node 0 alone, the only
//        row the score reads. Padded nodes are masked as keys; their own rows are never read.
//   SAF: gates sigmoid(BatchNorm1d(1)(Linear(node))) on running statistics, folded into the Linear; masked,
//        l1-normalised over the caption's nodes, pooled, l2-normalised.
import { NORM_EPS } from '../../model/config.js';
import { int, ints, type GraphBuilder, type Value } from './builder.js';
import { affineLast, l2norm, linear, linearLast, reduceSum, reshape, softmax, unsqueeze } from './graphOps.js';
import type { HostWeights } from './hostWeights.js';
import { VslError } from '../../util/errors.js';
import type { BlockDims, NodeMasks } from './similarityGraph.js';

const swapLast = ints([0, 1, 3, 2]);

/**
 * Reasoning step s for the query nodes `queries` (nImg, nCap, R, S) of x (nImg, nCap, N, S):
 * relu(W softmax(q xᵀ + mask) x + b), q = queries QK + qb; (nImg, nCap, R, S).
 */
function reasoningStep(b: GraphBuilder, w: HostWeights, s: number, x: Value, queries: Value, keys: Value): Value {
  const S = w.config.simDim;
  const pre = `sim_enc.SGR_module.${s}`;
  const { qk, qb } = w.queryKey(s);
  const q = affineLast(b, queries, b.init(`${pre}.qk`, qk, [S, S]), b.init(`${pre}.qb`, qb, [S]), [S, S]);
  const logits = b.op('Add', [b.op('MatMul', [q, b.op('Transpose', [x], { perm: swapLast })]), keys]);
  const agg = b.op('MatMul', [softmax(b, logits), x]);
  return linearLast(b, agg, w.linear(`${pre}.sim_graph_w`), `${pre}.sim_graph_w`, 'Relu');
}

/** SGR: sgr_step reasoning steps over the nodes (nImg, nCap, N, S); node 0 after the last one, (nImg·nCap, S). */
export function sgr(b: GraphBuilder, w: HostWeights, nodes: Value, masks: NodeMasks): Value {
  return b.scope('SGR', () => {
    const steps = w.config.sgrStep;
    let x = nodes;
    for (let s = 0; s < steps; s++) {
      const node0 = () => b.op('Slice', [x, b.i64([0]), b.i64([1]), b.i64([2])]); // (nImg, nCap, 1, S)
      x = reasoningStep(b, w, s, x, s === steps - 1 ? node0() : x, masks.keys);
    }
    return reshape(b, x, [-1, w.config.simDim]);
  });
}

/** SAF in eval mode: the gated, l1-normalised pooling of each pair's valid nodes, l2-normalised, (nImg·nCap, S). */
export function saf(b: GraphBuilder, w: HostWeights, nodes: Value, masks: NodeMasks): Value {
  return b.scope('SAF', () => {
    const pre = 'sim_enc.SAF_module';
    const g = linearLast(b, nodes, w.linearWithBatchNorm(`${pre}.attn_sim_w`, `${pre}.bn`), `${pre}.gate`);
    const gate = b.op('Mul', [b.op('Sigmoid', [reshape(b, g, [0, 0, -1])]), masks.valid]); // (nImg, nCap, N)
    const attn = b.op('Div', [gate, b.op('Add', [reduceSum(b, gate, [-1], true), b.scalar(NORM_EPS)])]); // l1norm
    const pooled = b.op('MatMul', [unsqueeze(b, attn, [2]), nodes]); // (nImg, nCap, 1, S)
    return l2norm(b, reshape(b, pooled, [-1, w.config.simDim]));
  });
}

/** The score head: sigmoid(Linear(vec)) as (nImg, nCap); `outName` names the result. */
/** A similarity module's ONNX graph: the pairs' nodes to one vector per pair, (nImg·nCap, S). */
type ModuleGraph = (b: GraphBuilder, w: HostWeights, nodes: Value, masks: NodeMasks) => Value;

/**
 * The modules this exporter can write, by their model/modules.ts name. A module without a line here scores on the
 * tfjs engine only (moduleGraph says so).
 */
const MODULE_GRAPHS: Record<string, ModuleGraph> = { SGR: sgr, SAF: saf };

/** Whether `moduleGraph(name)` has a graph (else the module scores on tfjs only). */
export const hasModuleGraph = (name: string): boolean => Object.hasOwn(MODULE_GRAPHS, name);

export function moduleGraph(name: string): ModuleGraph {
  const g = MODULE_GRAPHS[name];
  if (!g) throw new VslError(`no ONNX graph for similarity module ${name}: score it with --engine tfjs`);
  return g;
}

export function scoreHead(b: GraphBuilder, w: HostWeights, vec: Value, d: BlockDims, outName?: string): Value {
  return b.scope('scoreHead', () => {
    const logit = linear(b, vec, w.linear('sim_enc.sim_eval_w'), 'sim_enc.sim_eval_w');
    return b.op('Reshape', [b.op('Sigmoid', [logit]), b.op('Concat', [d.nImg, d.nCap], { axis: int(0) })], {}, outName);
  });
}
