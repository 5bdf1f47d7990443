// SAF, the similarity attention filtration module: gate each node of a pair with
// sigmoid(BatchNorm1d(1)(Linear(node))), l1-normalise the gates over the caption's nodes, pool the nodes with
// them and l2-normalise. In training the BatchNorm takes statistics per caption over all its images × nodes
// (the reference runs the module once per caption), and returns them for the running statistics.
import * as tf from '@tensorflow/tfjs';
import { BN_EPS } from './config.js';
import { l1norm, l2norm, linear } from './ops.js';
import { batchNormSpecs, linearSpecs } from './paramSpec.js';
import type { CaptionBnStats, SimilarityModule } from './similarityModule.js';
import type { Weights } from './weights.js';

/**
 * @param nodes (nImg, nCap, N, S)
 * @param valid (nCap, N) 1 for each caption's valid nodes
 */
function attentionFiltration(
  w: Weights,
  nodes: tf.Tensor4D,
  valid: tf.Tensor2D,
  training: boolean,
): { vec: tf.Tensor3D; stats?: CaptionBnStats } {
  const pre = 'sim_enc.SAF_module';
  const g = linear(nodes, w, `${pre}.attn_sim_w`).squeeze([3]); // (nImg, nCap, N)
  const nImg = nodes.shape[0];
  const gamma = w.t(`${pre}.bn.weight`);
  const beta = w.t(`${pre}.bn.bias`);
  let normed: tf.Tensor;
  let stats: CaptionBnStats | undefined;
  const v = tf.expandDims(valid, 0); // (1, nCap, N)
  if (training) {
    const count = tf.mul(tf.sum(valid, 1), nImg); // (nCap): images × valid nodes
    const mean = tf.div(tf.sum(tf.mul(g, v), [0, 2]), count);
    const centred = tf.sub(g, mean.reshape([1, -1, 1]));
    const variance = tf.div(tf.sum(tf.mul(tf.square(centred), v), [0, 2]), count);
    normed = tf.div(centred, tf.sqrt(tf.add(variance.reshape([1, -1, 1]), BN_EPS)));
    stats = {
      mean: mean as tf.Tensor1D,
      varUnbiased: tf.div(tf.mul(variance, count), tf.sub(count, 1)),
    };
  } else {
    normed = tf.div(tf.sub(g, w.t(`${pre}.bn.running_mean`)), tf.sqrt(tf.add(w.t(`${pre}.bn.running_var`), BN_EPS)));
  }
  const gate = tf.mul(tf.sigmoid(tf.add(tf.mul(normed, gamma), beta)), v);
  const attn = l1norm(gate, 2);
  const pooled = tf.sum(tf.mul(tf.expandDims(attn, 3), nodes), 2);
  return { vec: l2norm(pooled) as tf.Tensor3D, stats };
}

export const SAF: SimilarityModule = {
  name: 'SAF',
  describe: () => '',
  params: (c) => [
    ...linearSpecs('sim_enc.SAF_module.attn_sim_w', 1, c.simDim),
    ...batchNormSpecs('sim_enc.SAF_module.bn', 1),
  ],
  detect: (keys) => (keys.some((k) => k.startsWith('sim_enc.SAF_module.')) ? { module: 'SAF' } : undefined),
  ownOptions: [],
  forward(w, _c, p, training, dbg) {
    const r = attentionFiltration(w, p.nodes, p.valid, training);
    if (dbg) dbg('SAF_module', r.vec);
    return { vec: r.vec, captionStats: r.stats };
  },
  captionBatchNorm: 'sim_enc.SAF_module.bn',
  // set to keep SAF's batch-128 step under SGR's resident memory (docs/performance.md, Training memory)
  vectorsPerToken: () => 10,
  scoreWorkerGiB: 0.41,
  pairMflop: 8.6,
};
