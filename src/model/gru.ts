// The caption encoder's GRU over packed sequences, as PyTorch's pack_padded_sequence runs it: step t
// of the recurrence holds only the captions longer than t (longest first), so no step is computed for padding.
// PyTorch's cell, gates stacked r, z, n; h0 = 0:
//   r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
//   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 - z) ⊙ n + z ⊙ h
// The forward and its hand-written backward sit side by side (gruForward, gruBackward): the recurrent weight's
// gradient is one product over all steps instead of one per step. plainGru at the end is the same math in plain
// tf ops over padded captions, what the fast path is tested against.
import * as tf from '@tensorflow/tfjs';
import type { CustomFn } from '../ops/tape.js';
import { matMulT } from '../ops/matmul.js';
import type { Weights } from './weights.js';
/**
 * The packed layout of a caption batch: step t holds the first `steps[t]` captions in `order` (by length,
 * longest first), at packed rows offset(t) .. offset(t) + steps[t]. rowsF / rowsR give, for each packed row,
 * the row of the caption-major (nCap·Lp) token layout it reads: token t of its caption for the forward direction,
 * token L - 1 - t (each caption reversed within its own length) for the reverse one.
 */
export interface Packing {
  steps: number[];
  rowsF: Int32Array;
  rowsR: Int32Array;
}

export function packing(lengths: number[], Lp: number): Packing {
  const order = lengths.map((_, b) => b).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const steps: number[] = [];
  const rowsF: number[] = [];
  const rowsR: number[] = [];
  for (let t = 0; t < Lp; t++) {
    let n = 0;
    while (n < order.length && lengths[order[n]] > t) {
      const b = order[n++];
      rowsF.push(b * Lp + t);
      rowsR.push(b * Lp + lengths[b] - 1 - t);
    }
    if (n === 0) break;
    steps.push(n);
  }
  return { steps, rowsF: Int32Array.from(rowsF), rowsR: Int32Array.from(rowsR) };
}

/** What the forward pass keeps, all packed (P, H): the gates r and z, the candidate n, W_hn h + b_hn, and h. */
interface GruSaved {
  r: tf.Tensor2D;
  z: tf.Tensor2D;
  n: tf.Tensor2D;
  hn: tf.Tensor2D;
  h: tf.Tensor2D;
}

/** The forward pass over packed input projections xp (P, 3H); returns h (P, H) and what the gradient needs. */
function gruForward(
  xp: tf.Tensor2D,
  whhT: tf.Tensor2D,
  bhh: tf.Tensor1D,
  steps: number[],
): GruSaved & { h: tf.Tensor2D } {
  const H = whhT.shape[0];
  const parts: { r: tf.Tensor[]; z: tf.Tensor[]; n: tf.Tensor[]; hn: tf.Tensor[]; h: tf.Tensor[] } = {
    r: [],
    z: [],
    n: [],
    hn: [],
    h: [],
  };
  let h: tf.Tensor2D | null = null;
  let o = 0;
  for (const nt of steps) {
    const [xr, xz, xn] = tf.split(tf.slice(xp, [o, 0], [nt, 3 * H]), 3, 1);
    const prev = h ? tf.slice(h, [0, 0], [nt, H]) : null;
    // h0 = 0: the first step's hidden projection is its bias alone
    const hp = prev ? tf.add(tf.matMul(prev, whhT), bhh) : tf.broadcastTo(bhh, [nt, 3 * H]);
    const [hr, hz, hn] = tf.split(hp, 3, 1);
    const r = tf.sigmoid(tf.add(xr, hr));
    const z = tf.sigmoid(tf.add(xz, hz));
    const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
    // typed here, not inferred: h's type would otherwise depend on itself through prev, r, z and n
    const next: tf.Tensor2D = prev ? tf.add(n, tf.mul(z, tf.sub(prev, n))) : tf.sub(n, tf.mul(z, n));
    h = next;
    parts.r.push(r);
    parts.z.push(z);
    parts.n.push(n);
    parts.hn.push(hn);
    parts.h.push(h);
    o += nt;
  }
  const cat = (ts: tf.Tensor[]) => tf.concat(ts, 0) as tf.Tensor2D;
  return { r: cat(parts.r), z: cat(parts.z), n: cat(parts.n), hn: cat(parts.hn), h: cat(parts.h) };
}

/**
 * The backward of gruForward, d(x, W_ih, W_hh, b_ih, b_hh) from dL/dh (P, H). Backpropagation through time runs
 * step by step (the only per-step product is dh_prev = dhp · W_hh, rows: the captions alive at that step); the
 * weight and input gradients are then one product each over all steps, where tfjs' own gradient made a small
 * (3H, nCap) @ (nCap, H) product, and an accumulation into a 3H × H tensor, at every step.
 * x (P, wordDim) is the packed input, wih (3H, wordDim) and whh (3H, H) the weights as stored.
 */
function gruBackward(
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
    const rows = (a: tf.Tensor2D, t: number) => tf.slice(a, [offsets[t], 0], [steps[t], H]);
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
      const prev = t > 0 ? tf.slice(s.h, [offsets[t - 1], 0], [nt, H]) : tf.zeros([nt, H]);
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
      if (t > 0) carry = tf.add<tf.Tensor2D>(tf.mul(g, z), tf.matMul(dh3, whh));
    }
    const DXP = tf.concat(dxp, 0) as tf.Tensor2D; // (P, 3H)
    const DHP = tf.concat(dhp, 0) as tf.Tensor2D;
    const dx = tf.matMul(DXP, wih);
    const dWih = matMulT(DXP, x, true);
    const dWhh = matMulT(DHP, tf.concat(hPrev, 0) as tf.Tensor2D, true);
    return [dx, dWih, dWhh, tf.sum(DXP, 0), tf.sum(DHP, 0)];
  });
}

/**
 * One GRU direction `suffix` ('' or '_reverse') over packed input x (P, wordDim); returns the hidden states (P, H)
 * in the same packed order. Differentiable with respect to x and the direction's four parameters.
 */
export function gruDirection(w: Weights, x: tf.Tensor2D, steps: number[], suffix: string): tf.Tensor2D {
  const p = (k: string) => w.t(`txt_enc.cap_rnn.${k}_l0${suffix}`);
  const [wih, whh, bih, bhh] = [p('weight_ih'), p('weight_hh'), p('bias_ih'), p('bias_hh')] as [
    tf.Tensor2D,
    tf.Tensor2D,
    tf.Tensor1D,
    tf.Tensor1D,
  ];
  // transposed once per Weights object (plain 2-D products are the fast ones on wasm); not differentiated
  const wihT = w.derived(`wih${suffix}^T`, () => tf.transpose(wih)) as tf.Tensor2D;
  const whhT = w.derived(`whh${suffix}^T`, () => tf.transpose(whh)) as tf.Tensor2D;
  const f = tf.customGrad(((
    xi: tf.Tensor,
    wi: tf.Tensor,
    wh: tf.Tensor,
    bi: tf.Tensor,
    bh: tf.Tensor,
    save: tf.GradSaveFunc,
  ) => {
    const xp = tf.add<tf.Tensor2D>(tf.matMul(xi, wihT), bi);
    const s = gruForward(xp, whhT, bh as tf.Tensor1D, steps);
    save([xi, wi, wh, s.r, s.z, s.n, s.hn, s.h]);
    return {
      value: s.h,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, swi, swh, r, z, n, hn, h] = saved as tf.Tensor2D[];
        return gruBackward(dy as tf.Tensor2D, sx, swi, swh, { r, z, n, hn, h }, steps);
      },
    };
  }) as unknown as CustomFn);
  return f(x, wih, whh, bih, bhh) as tf.Tensor2D;
}

/**
 * The readable math of one GRU direction: PyTorch's cell over padded captions x (nCap, Lp, wordDim), every step
 * computed (steps past a caption's end are computed and unused), tfjs' own gradients. The packed, hand-differentiated
 * gruDirection is tested against it.
 */
export function plainGru(x: tf.Tensor3D, wih: tf.Tensor, whh: tf.Tensor, bih: tf.Tensor, bhh: tf.Tensor): tf.Tensor3D {
  const [nCap, Lp] = x.shape;
  const H = whh.shape[1]!;
  let h: tf.Tensor = tf.zeros([nCap, H]);
  const outs: tf.Tensor[] = [];
  for (let t = 0; t < Lp; t++) {
    const xp = tf.add(tf.matMul(tf.squeeze(tf.slice(x, [0, t, 0], [nCap, 1, -1]), [1]), wih, false, true), bih);
    const hp = tf.add(tf.matMul(h, whh, false, true), bhh);
    const [xr, xz, xn] = tf.split(xp, 3, 1);
    const [hr, hz, hn] = tf.split(hp, 3, 1);
    const r = tf.sigmoid(tf.add(xr, hr));
    const z = tf.sigmoid(tf.add(xz, hz));
    const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
    h = tf.add(tf.mul(tf.sub(1, z), n), tf.mul(z, h));
    outs.push(h);
  }
  return tf.stack(outs, 1) as tf.Tensor3D;
}
