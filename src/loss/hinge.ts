// The contrastive hinge loss of SGRAF/VSE++: summed over the batch, not averaged.
import * as tf from '@tensorflow/tfjs';

/**
 * @param sims (B, B) scores, rows images, columns captions, positives on the diagonal
 * @param maxViolation keep only the hardest negative per anchor (the reference's default) or sum all
 */
export function hingeLoss(sims: tf.Tensor2D, margin: number, maxViolation: boolean): tf.Scalar {
  const B = sims.shape[0];
  const diag = tf.sum(tf.mul(sims, tf.eye(B)), 1); // S[i,i]
  const offDiag = tf.sub(1, tf.eye(B));
  // cost_s[i,j]: image i anchors, caption j is a negative; cost_im[i,j]: caption j anchors, image i negative
  const costS = tf.mul<tf.Tensor2D>(tf.relu(tf.sub(tf.add(sims, margin), diag.reshape([B, 1]))), offDiag);
  const costIm = tf.mul<tf.Tensor2D>(tf.relu(tf.sub(tf.add(sims, margin), diag.reshape([1, B]))), offDiag);
  if (maxViolation) return tf.add(tf.sum(hardest(costS, 1)), tf.sum(hardest(costIm, 0)));
  return tf.add(tf.sum(costS), tf.sum(costIm));
}

/**
 * Max along `axis` whose gradient goes to one entry, the first of equal maxima, as torch.max(dim) does;
 * tf.max would send it to every tied entry (ties happen when a batch holds two captions of one image).
 */
function hardest(cost: tf.Tensor2D, axis: 0 | 1): tf.Tensor1D {
  const n = cost.shape[axis];
  const pick = tf.oneHot(tf.argMax(axis === 1 ? cost : tf.transpose(cost), 1), n);
  return tf.sum(tf.mul(axis === 1 ? cost : tf.transpose(cost), pick), 1);
}
