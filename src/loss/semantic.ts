// The Visual Semantic Loss of VSL: agreement between the soft ranks of the model's
// scores and the soft ranks of the TF-IDF similarity of the images' captions.
import * as tf from '@tensorflow/tfjs';

const VSL_TAU = 0.001;
const VSL_WEIGHT = 10;
const CLAMP = 50;

export type SemanticLossKind = 'visual' | 'visual+textual' | 'none';

/**
 * Soft rank matrix with the reference's exact indexing: R[j,k] = 1 + Σ_{i≠k} σ_τ(X[i,j] − X[j,k]),
 * σ_τ(x) = 1 / (1 + exp(clamp(−x/τ, −50, 50))). For a symmetric X this is the soft descending rank of X[j,k]
 * within row j; for the non-symmetric score matrix it compares with column j, as the reference does.
 */
export function rankMatrix(x: tf.Tensor2D, tau = VSL_TAU): tf.Tensor2D {
  const N = x.shape[0];
  // d[j,k,i] = X[i,j] − X[j,k]
  const xt = tf.transpose(x); // xt[j,i] = X[i,j]
  const d = tf.sub(tf.expandDims(xt, 1), tf.expandDims(x, 2));
  const z = tf.clipByValue(tf.div(tf.neg(d), tau), -CLAMP, CLAMP);
  const sig = tf.div(1, tf.add(1, tf.exp(z)));
  const notSelf = tf.expandDims(tf.sub(1, tf.eye(N)), 0); // [k,i] mask of i ≠ k
  return tf.add(1, tf.sum(tf.mul(sig, notSelf), 2));
}

/** 10 · (1 − mean_{j,k} min(R_S, R_C) / max(R_S, R_C)); only R_S carries gradient. */
export function rankAgreementLoss(sims: tf.Tensor2D, semantic: tf.Tensor2D): tf.Scalar {
  const rs = rankMatrix(sims);
  const rc = rankMatrix(semantic); // data only: the TF-IDF matrix is a constant of the step
  const ratio = tf.div(tf.minimum(rs, rc), tf.maximum(rs, rc));
  return tf.mul(tf.sub(1, tf.mean(ratio)), VSL_WEIGHT);
}

/** The semantic term of the chosen kind (0 for 'none'); `captionSim` is needed only for the textual term. */
export function semanticLoss(
  kind: SemanticLossKind,
  sims: tf.Tensor2D,
  imageSim: tf.Tensor2D | null,
  captionSim: tf.Tensor2D | null,
): tf.Scalar {
  if (kind === 'none') return tf.scalar(0);
  if (!imageSim) throw new Error('the visual semantic loss needs the image-image TF-IDF similarity of the batch');
  let loss = rankAgreementLoss(sims, imageSim);
  if (kind === 'visual+textual') {
    if (!captionSim) throw new Error('the textual semantic loss needs the caption-caption TF-IDF similarity');
    loss = tf.add(loss, rankAgreementLoss(sims, captionSim));
  }
  return loss;
}
