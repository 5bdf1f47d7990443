// The caption encoder's GRU over packed sequences, as PyTorch's pack_padded_sequence runs it: step t
// of the recurrence holds only the captions longer than t (longest first), so no step is computed for padding.
// PyTorch's cell, gates stacked r, z, n; h0 = 0:
//   r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
//   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 - z) ⊙ n + z ⊙ h
// Its gradient is written by hand (gru.grad.ts): the recurrent weight's gradient as one product over all steps
// instead of one per step.
import * as tf from '@tensorflow/tfjs';
import type { CustomFn } from '../engine/tape.js';
import { gruBackward, type GruSaved } from './gru.grad.js';
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
    const prev = h ? (tf.slice(h, [0, 0], [nt, H]) as tf.Tensor2D) : null;
    // h0 = 0: the first step's hidden projection is its bias alone
    const hp = prev ? tf.add(tf.matMul(prev, whhT), bhh) : tf.broadcastTo(bhh, [nt, 3 * H]);
    const [hr, hz, hn] = tf.split(hp, 3, 1);
    const r = tf.sigmoid(tf.add(xr, hr));
    const z = tf.sigmoid(tf.add(xz, hz));
    const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
    h = (prev ? tf.add(n, tf.mul(z, tf.sub(prev, n))) : tf.sub(n, tf.mul(z, n))) as tf.Tensor2D;
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
    const xp = tf.add(tf.matMul(xi as tf.Tensor2D, wihT), bi) as tf.Tensor2D;
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
