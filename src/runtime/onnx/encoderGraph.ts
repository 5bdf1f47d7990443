// The ONNX blocks of the two encoders and the two global vectors, one function per block of the tfjs model, in
// eval mode (no dropout, BatchNorm on running statistics):
//   imageEncoder  encoders.ts encodeImages       images (N, 36, imgDim) -> regions (N, 36, D)
//   visualSA      globalAttention.ts visualGlobal regions -> vGlobal (N, D)
//   captionEncoder encoders.ts encodeCaptions    ids (nCap, Lp), lengths -> words (nCap, Lp, D), 0 past each length
//   textSA        globalAttention.ts textGlobal   words, lengths -> tGlobal (nCap, D)
// Two rewrites that change no value: the embedding_common Linear of VisualSA/TextSA is applied as
// local · (glob ⊙ w) (no (·, D) product tensor), and its bias is left out, since a constant added to every score
// of a softmax cancels; VisualSA's global BatchNorm folds into its Linear.
import { REGIONS } from '../../model/config.js';
import { int, ints, str, type GraphBuilder, type Value } from './builder.js';
import {
  additiveMask,
  cast,
  dims,
  l2norm,
  linear,
  linearLast,
  reduceSum,
  reshape,
  softmax,
  squeeze,
  unsqueeze,
  validMask,
} from './graphOps.js';
import type { HostWeights } from './hostWeights.js';

const V = 'sim_enc.v_global_w';
const T = 'sim_enc.t_global_w';

/** images (N, 36, imgDim) -> region embeddings (N, 36, D): the fc, then l2norm unless noImgNorm. */
export function imageEncoder(b: GraphBuilder, w: HostWeights, images: Value): Value {
  return b.scope('imageEncoder', () => {
    const regions = linearLast(b, images, w.linear('img_enc.fc'), 'img_enc.fc');
    return w.config.noImgNorm ? regions : l2norm(b, regions);
  });
}

/**
 * Attention pooling shared by VisualSA and TextSA: score_k = local_k · (glob ⊙ wc) over the items of each row,
 * softmax (with an additive mask for captions), and the weighted sum of `items` (n, K, D), l2-normalised.
 */
function attentionPool(
  b: GraphBuilder,
  local: Value,
  glob: Value,
  wc: Float32Array,
  name: string,
  items: Value,
  mask?: Value,
): Value {
  const D = wc.length;
  const u = unsqueeze(b, b.op('Mul', [glob, b.init(name, wc, [D])]), [2]); // (n, D, 1)
  let score = reshape(b, b.op('MatMul', [local, u]), [0, -1]); // (n, K)
  if (mask) score = b.op('Add', [score, mask]);
  const weights = unsqueeze(b, softmax(b, score), [1]); // (n, 1, K)
  return l2norm(b, reshape(b, b.op('MatMul', [weights, items]), [0, D]));
}

/** VisualSA in eval mode: regions (N, 36, D) -> v̄ (N, D). */
export function visualSA(b: GraphBuilder, w: HostWeights, regions: Value): Value {
  return b.scope('visualSA', () => {
    // local branch: Linear -> BatchNorm1d(36) over the region slots -> tanh
    const l0 = linearLast(b, regions, w.linear(`${V}.embedding_local.0`), `${V}.local`);
    const bn = w.bnScaleShift(`${V}.embedding_local.1`);
    const scale = b.init(`${V}.local.bn_scale`, bn.a, [REGIONS, 1]);
    const shift = b.init(`${V}.local.bn_shift`, bn.c, [REGIONS, 1]);
    const local = b.op('Tanh', [b.op('Add', [b.op('Mul', [l0, scale]), shift])]);
    // global branch on the mean region: Linear + BatchNorm1d(D) folded into one Linear -> tanh
    const raw = b.op('ReduceMean', [regions], { axes: ints([1]), keepdims: int(0) });
    const glob = linear(
      b,
      raw,
      w.linearWithBatchNorm(`${V}.embedding_global.0`, `${V}.embedding_global.1`),
      `${V}.global`,
      'Tanh',
    );
    return attentionPool(b, local, glob, w.linear(`${V}.embedding_common.0`).w, `${V}.common.weight`, regions);
  });
}

/**
 * ids (nCap, Lp) int32 or int64, lengths (nCap) int32 -> word embeddings (nCap, Lp, D), exactly 0 past each
 * length, and the valid-token mask (nCap, Lp) bool for TextSA. The GRU is ONNX's GRU op
 * (linear_before_reset = 1 is PyTorch's cell; sequence_lens makes the reverse direction start at each caption's
 * own last token, as packed sequences do), the two directions averaged as encoders.ts does.
 */
export function captionEncoder(
  b: GraphBuilder,
  w: HostWeights,
  ids: Value,
  lengths: Value,
): { words: Value; valid: Value } {
  return b.scope('captionEncoder', () => {
    const c = w.config;
    const H = c.embedSize;
    const embed = b.init('txt_enc.embed.weight', w.get('txt_enc.embed.weight'), [c.vocabSize, c.wordDim]);
    const x = b.op('Transpose', [b.op('Gather', [embed, ids], { axis: int(0) })], {
      perm: ints([1, 0, 2]),
    }); // (Lp, nCap, wordDim): ONNX Runtime's GRU takes the sequence-first layout only
    const dirs = (c.biGru ? ['', '_reverse'] : ['']).map((s) => w.gruDirection(s));
    const cat = (k: 'W' | 'R' | 'B') => {
      const out = new Float32Array(dirs.reduce((n, d) => n + d[k].length, 0));
      let o = 0;
      for (const d of dirs) {
        out.set(d[k], o);
        o += d[k].length;
      }
      return out;
    };
    const nd = dirs.length;
    const W = b.init('txt_enc.gru.W', cat('W'), [nd, 3 * H, c.wordDim]);
    const R = b.init('txt_enc.gru.R', cat('R'), [nd, 3 * H, H]);
    const B = b.init('txt_enc.gru.B', cat('B'), [nd, 6 * H]);
    const [y] = b.opN('GRU', [x, W, R, B, lengths], 1, {
      hidden_size: int(H),
      direction: str(c.biGru ? 'bidirectional' : 'forward'),
      linear_before_reset: int(1),
    }); // (Lp, nd, nCap, H)
    const h = c.biGru ? b.op('ReduceMean', [y], { axes: ints([1]), keepdims: int(0) }) : squeeze(b, y, [1]);
    const valid = validMask(b, cast(b, lengths, 'int64'), dims(b, ids, 1));
    // ONNX Runtime writes 0 past each sequence's length; the mask makes it so whatever the runtime
    const zeroed = b.op('Mul', [
      b.op('Transpose', [h], { perm: ints([1, 0, 2]) }),
      unsqueeze(b, cast(b, valid, 'float32'), [2]),
    ]);
    return { words: c.noTxtNorm ? zeroed : l2norm(b, zeroed), valid };
  });
}

/** TextSA in eval mode: words (nCap, Lp, D), zero-padded -> t̄ (nCap, D); mean and softmax over the valid tokens. */
export function textSA(b: GraphBuilder, w: HostWeights, words: Value, lengths: Value, valid: Value): Value {
  return b.scope('textSA', () => {
    const local = linearLast(b, words, w.linear(`${T}.embedding_local.0`), `${T}.local`, 'Tanh');
    const count = unsqueeze(b, cast(b, lengths, 'float32'), [1]); // (nCap, 1) float
    const raw = b.op('Div', [reduceSum(b, words, [1], false), count]);
    const glob = linear(b, raw, w.linear(`${T}.embedding_global.0`), `${T}.global`, 'Tanh');
    const mask = additiveMask(b, valid);
    return attentionPool(b, local, glob, w.linear(`${T}.embedding_common.0`).w, `${T}.common.weight`, words, mask);
  });
}
