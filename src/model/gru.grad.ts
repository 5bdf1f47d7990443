// The gradient of one GRU direction over packed sequences (gru.ts), written by hand. Backpropagation through
// time runs step by step (the only per-step product is dh_prev = dhp · W_hh, rows: the captions alive at that
// step); the weight and input gradients are then one product each over all steps, where tfjs' own gradient
// made a small (3H, nCap) @ (nCap, H) product, and an accumulation into a 3H × H tensor, at every step.
import * as tf from '@tensorflow/tfjs';

/** What the forward pass keeps, all packed (P, H): the gates r and z, the candidate n, W_hn h + b_hn, and h. */
export interface GruSaved {
  r: tf.Tensor2D;
  z: tf.Tensor2D;
  n: tf.Tensor2D;
  hn: tf.Tensor2D;
  h: tf.Tensor2D;
}

/**
 * d(x, W_ih, W_hh, b_ih, b_hh) from dL/dh (P, H); x (P, wordDim) is the packed input, wih (3H, wordDim) and
 * whh (3H, H) the weights as stored.
 */
export function gruBackward(
  dh: tf.Tensor2D,
  x: tf.Tensor2D,
  wih: tf.Tensor2D,
  whh: tf.Tensor2D,
  s: GruSaved,
  steps: number[],
): tf.Tensor[] {
  return tf.tidy(() => {
    const H = whh.shape[1];
    const offsets = steps.map((_, t) => steps.slice(0, t).reduce((a, b) => a + b, 0));
    const rows = (a: tf.Tensor2D, t: number) => tf.slice(a, [offsets[t], 0], [steps[t], H]) as tf.Tensor2D;
    const dxp: tf.Tensor[] = [];
    const dhp: tf.Tensor[] = [];
    const hPrev: tf.Tensor[] = []; // h of the previous step, for W_hh's gradient (zeros at t = 0)
    let carry: tf.Tensor2D | null = null; // dL/dh_{t} through step t + 1, rows of the captions alive then
    for (let t = steps.length - 1; t >= 0; t--) {
      const nt = steps[t];
      let g = rows(dh, t);
      if (carry)
        g = tf.add(
          g,
          nt > carry.shape[0]
            ? tf.pad(carry, [
                [0, nt - carry.shape[0]],
                [0, 0],
              ])
            : carry,
        );
      const [r, z, n, hn] = [rows(s.r, t), rows(s.z, t), rows(s.n, t), rows(s.hn, t)];
      const prev = t > 0 ? (tf.slice(s.h, [offsets[t - 1], 0], [nt, H]) as tf.Tensor2D) : tf.zeros([nt, H]);
      // h' = n + z (h - n)
      const dn = tf.mul(g, tf.sub(1, z));
      const dz = tf.mul(g, tf.sub(prev, n));
      // n = tanh(x_n + r · hn)
      const dan = tf.mul(dn, tf.sub(1, tf.square(n)));
      const dr = tf.mul(dan, hn);
      const dhn = tf.mul(dan, r);
      // r, z = σ(·)
      const dar = tf.mul(dr, tf.mul(r, tf.sub(1, r)));
      const daz = tf.mul(dz, tf.mul(z, tf.sub(1, z)));
      const dh3 = tf.concat([dar, daz, dhn], 1) as tf.Tensor2D;
      dxp.unshift(tf.concat([dar, daz, dan], 1));
      dhp.unshift(dh3);
      hPrev.unshift(prev);
      if (t > 0) carry = tf.add(tf.mul(g, z), tf.matMul(dh3, whh)) as tf.Tensor2D;
    }
    const DXP = tf.concat(dxp, 0) as tf.Tensor2D; // (P, 3H)
    const DHP = tf.concat(dhp, 0) as tf.Tensor2D;
    const dx = tf.matMul(DXP, wih);
    const dWih = tf.matMul(tf.transpose(DXP), x);
    const dWhh = tf.matMul(tf.transpose(DHP), tf.concat(hPrev, 0) as tf.Tensor2D);
    return [dx, dWih, dWhh, tf.sum(DXP, 0), tf.sum(DHP, 0)];
  });
}
