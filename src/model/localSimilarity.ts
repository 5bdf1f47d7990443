// Local similarity vectors of every image of a block with every word of a caption block, with a
// hand-written gradient. tfjs' own gradient of this block kept ~30 (Lp, D) tensors per image-caption pair
// (the context, its difference to the word, its square, and their gradients, per image) and transposed
// (nCap·Lp, D) matrices for its weight gradients. Here the forward keeps only the (nCap·Lp, 36) attention
// quantities per image; the backward recomputes the context from them (one (·,36)@(36,D) product) and
// uses plain 2-D products whose transposes are of (·,36) or (·,S) matrices.
import * as tf from '@tensorflow/tfjs';
import { ATTN_SMOOTH, LEAKY_SLOPE, NORM_EPS } from './config.js';
import type { CustomFn } from '../ops/tape.js';
import { matMulT } from '../ops/matmul.js';

/** What the forward of one image keeps for its gradient, all small: (R, 36) or less, R = nCap·Lp. */
interface ImageSaved {
  a0: tf.Tensor2D; // (R, K) word-region products before LeakyReLU
  alpha: tf.Tensor2D; // (R, K) attention after the softmax
  nrm: tf.Tensor3D; // (nCap, 1, K) norm over each caption's words, + eps
  r: tf.Tensor2D; // (R, 1) context norm + eps
  sq: tf.Tensor2D; // (R, 1) squared context norm αᵀ(VVᵀ)α
}

interface Shapes {
  nCap: number;
  Lp: number;
}

/**
 * One image: words (R, D), its regions v (K, D) and vT (D, K), the Linear's transposed weight (D, S) and
 * bias. Returns Linear((ĉ - w)²) (R, S) and what the gradient needs.
 */
function imageForward(
  words: tf.Tensor2D,
  v: tf.Tensor2D,
  vT: tf.Tensor2D,
  locWT: tf.Tensor2D,
  locB: tf.Tensor1D,
  { nCap, Lp }: Shapes,
): { out: tf.Tensor2D } & ImageSaved {
  const K = v.shape[0];
  // a_kl = LeakyReLU(v_k · w_l), l2-normalised over the words of each caption, softmax(9·) over regions
  const a0 = tf.matMul<tf.Tensor2D>(words, vT);
  const a = tf.leakyRelu(a0, LEAKY_SLOPE).reshape([nCap, Lp, K]);
  const nrm = tf.add<tf.Tensor3D>(tf.sqrt(tf.sum(tf.square(a), 1, true)), NORM_EPS);
  const alpha = tf.softmax(tf.mul(tf.div(a, nrm), ATTN_SMOOTH)).reshape<tf.Tensor2D>([nCap * Lp, K]);
  // ‖Σ α v‖² = αᵀ(V Vᵀ)α: the context's norm from the 36x36 Gram matrix, folded into α before the
  // product, so that no pass over the (R, D) context is needed to normalise it.
  const sq = tf.sum<tf.Tensor2D>(tf.mul(tf.matMul(alpha, tf.matMul(v, vT)), alpha), 1, true);
  const r = tf.add<tf.Tensor2D>(tf.sqrt(tf.relu(sq)), NORM_EPS);
  const ctx = tf.matMul(tf.div<tf.Tensor2D>(alpha, r), v); // (R, D), l2-normed context
  const out = tf.add<tf.Tensor2D>(tf.matMul(tf.squaredDifference<tf.Tensor2D>(ctx, words), locWT), locB);
  return { out, a0, alpha, nrm, r, sq };
}

/**
 * Gradient of one image's output: returns d(words) (R, D) and d(regions of the image) (K, D), and adds the
 * Linear's weight and bias gradients to `acc`.
 */
function imageBackward(
  dOut: tf.Tensor2D,
  words: tf.Tensor2D,
  v: tf.Tensor2D,
  vT: tf.Tensor2D,
  locW: tf.Tensor2D,
  s: ImageSaved,
  { nCap, Lp }: Shapes,
): { dWords: tf.Tensor2D; dV: tf.Tensor2D; dLocW: tf.Tensor2D; dLocB: tf.Tensor1D } {
  const K = v.shape[0];
  // recompute the context and the squared difference from the saved attention
  const alphaN = tf.div<tf.Tensor2D>(s.alpha, s.r);
  const diff = tf.sub<tf.Tensor2D>(tf.matMul(alphaN, v), words); // (R, D)
  const dLocB = tf.sum<tf.Tensor1D>(dOut, 0);
  const dLocW = matMulT(dOut, tf.square<tf.Tensor2D>(diff), true); // (S, D)
  const dDiff = tf.mul<tf.Tensor2D>(tf.mul(diff, 2), tf.matMul(dOut, locW)); // (R, D)
  // context = αN V
  const dAlphaN = tf.matMul(dDiff, vT); // (R, K)
  let dV: tf.Tensor = matMulT(alphaN, dDiff, true); // (K, D)
  // αN = α / r, r = sqrt(relu(sq)) + eps, sq = αᵀ G α with G = V Vᵀ
  const dR = tf.neg(tf.div(tf.sum(tf.mul(dAlphaN, s.alpha), 1, true), tf.square(s.r)));
  const root = tf.sqrt(tf.relu(s.sq));
  const dSq = tf.where(tf.greater(s.sq, 0), tf.div(dR, tf.mul(root, 2)), tf.zerosLike(s.sq)) as tf.Tensor2D;
  const gram = tf.matMul(v, vT);
  const dAlpha = tf.add(tf.div(dAlphaN, s.r), tf.mul(tf.mul(dSq, 2), tf.matMul(s.alpha, gram))); // G symmetric
  const dGram = matMulT(tf.mul(s.alpha, dSq), s.alpha, true); // (K, K)
  dV = tf.add(dV, tf.matMul(tf.add(dGram, tf.transpose(dGram)), v));
  // α = softmax(9 · a / nrm)
  const y = tf.mul(dAlpha, s.alpha);
  const dZ = tf.mul(tf.sub(y, tf.mul(tf.sum(y, 1, true), s.alpha)), ATTN_SMOOTH).reshape([nCap, Lp, K]);
  const a = tf.leakyRelu(s.a0, LEAKY_SLOPE).reshape([nCap, Lp, K]);
  // nrm = sqrt(Σ_words a²) + eps
  const dNrm = tf.neg(tf.div(tf.sum(tf.mul(dZ, a), 1, true), tf.square(s.nrm)));
  const ss = tf.sum(tf.square(a), 1, true);
  const dA = tf
    .add(tf.div(dZ, s.nrm), tf.mul(a, tf.where(tf.greater(ss, 0), tf.div(dNrm, tf.sqrt(ss)), tf.zerosLike(ss))))
    .reshape([nCap * Lp, K]);
  const dA0 = tf.where(tf.greater(s.a0, 0), dA, tf.mul(dA, LEAKY_SLOPE)) as tf.Tensor2D; // LeakyReLU
  const dWords = tf.sub<tf.Tensor2D>(tf.matMul(dA0, v), dDiff); // a0 = W vᵀ; diff = ctx - W
  dV = tf.add(dV, matMulT(dA0, words, true));
  return { dWords, dV: dV as tf.Tensor2D, dLocW: dLocW, dLocB };
}

/** Image m's regions (K, D) and their transpose (D, K), from (nImg, K, D). */
function imageRegions(regions: tf.Tensor3D, m: number): { v: tf.Tensor2D; vT: tf.Tensor2D } {
  const [, K, D] = regions.shape;
  const v = tf.slice(regions, [m, 0, 0], [1, K, D]).reshape<tf.Tensor2D>([K, D]);
  return { v, vT: tf.transpose<tf.Tensor2D>(v) };
}

/**
 * Local similarity vectors before their l2norm, (nImg, nCap·Lp, S): for every image, SCAN text-to-image
 * attention of every word of the block over the 36 regions, then Linear((ĉ - w)²).
 * @param words (nCap·Lp, D) word embeddings, zero rows for padding
 * @param regions (nImg, K, D) region embeddings
 * @param locW (S, D) the Linear's weight as stored; locWT its transpose (not differentiated)
 */
export function localSimilarity(
  words: tf.Tensor2D,
  regions: tf.Tensor3D,
  locW: tf.Tensor2D,
  locWT: tf.Tensor2D,
  locB: tf.Tensor1D,
  shapes: Shapes,
): tf.Tensor3D {
  const nImg = regions.shape[0];
  const f = tf.customGrad(((w: tf.Tensor, rs: tf.Tensor, lw: tf.Tensor, lb: tf.Tensor, save: tf.GradSaveFunc) => {
    const outs: tf.Tensor2D[] = [];
    const kept: tf.Tensor[] = [];
    for (let m = 0; m < nImg; m++) {
      const r = tf.tidy(() => {
        const { v, vT } = imageRegions(rs as tf.Tensor3D, m);
        return imageForward(w as tf.Tensor2D, v, vT, locWT, lb as tf.Tensor1D, shapes) as unknown as tf.NamedTensorMap;
      }) as unknown as { out: tf.Tensor2D } & ImageSaved;
      outs.push(r.out);
      kept.push(r.a0, r.alpha, r.nrm, r.r, r.sq);
    }
    save([w, rs, lw, ...kept]);
    const value = tf.stack(outs);
    tf.dispose([...outs, ...kept]); // save() holds its own references
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sw, srs, slw, ...sk] = saved as [tf.Tensor2D, tf.Tensor3D, tf.Tensor2D, ...tf.Tensor[]];
          const dOut = dy as tf.Tensor3D;
          const S = dOut.shape[2];
          let dWords: tf.Tensor = tf.zerosLike(sw);
          let dLocW: tf.Tensor = tf.zerosLike(slw);
          let dLocB: tf.Tensor = tf.zeros([S]);
          const dRegions: tf.Tensor[] = [];
          for (let m = 0; m < nImg; m++) {
            const [a0, alpha, nrm, r, sq] = sk.slice(5 * m, 5 * m + 5);
            const g = tf.tidy(() => {
              const { v, vT } = imageRegions(srs, m);
              const dOm = tf.slice(dOut, [m, 0, 0], [1, dOut.shape[1], S]).reshape<tf.Tensor2D>([-1, S]);
              const saved1 = { a0, alpha, nrm, r, sq } as ImageSaved;
              const b = imageBackward(dOm, sw, v, vT, slw, saved1, shapes);
              return [tf.add(dWords, b.dWords), tf.add(dLocW, b.dLocW), tf.add(dLocB, b.dLocB), b.dV];
            });
            tf.dispose([dWords, dLocW, dLocB]);
            [dWords, dLocW, dLocB] = g;
            dRegions.push(g[3]);
          }
          return [dWords, tf.stack(dRegions), dLocW, dLocB];
        }),
    };
  }) as unknown as CustomFn);
  return f(words, regions, locW, locB) as tf.Tensor3D;
}

/** The same forward without a gradient (evaluation): no customGrad bookkeeping, nothing saved. */
export function localSimilarityEval(
  words: tf.Tensor2D,
  regions: tf.Tensor3D,
  locWT: tf.Tensor2D,
  locB: tf.Tensor1D,
  shapes: Shapes,
): tf.Tensor3D {
  const outs: tf.Tensor2D[] = [];
  for (let m = 0; m < regions.shape[0]; m++) {
    outs.push(
      tf.tidy(() => {
        const { v, vT } = imageRegions(regions, m);
        return imageForward(words, v, vT, locWT, locB, shapes).out;
      }),
    );
  }
  const value = tf.stack(outs) as tf.Tensor3D;
  tf.dispose(outs);
  return value;
}
