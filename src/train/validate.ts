// Validation (SPEC §6): encode the dev split (its first maxCaptions captions), score every image with
// every caption, R@1/5/10 both ways and rsum.
import type { ModelConfig } from '../model/config.js';
import type { ParamRegistry } from '../model/params.js';
import { Weights } from '../model/weights.js';
import { encodeCaptionTokens, encodeImages } from '../eval/encodeSplit.js';
import { scoreMatrix } from '../eval/scoreMatrix.js';
import { evaluate, type EvalResult } from '../eval/metrics.js';
import type { PrecompSplit } from '../data/precomp.js';

export function validate(reg: ParamRegistry, c: ModelConfig, dev: PrecompSplit, tokens: Int32Array[]): EvalResult {
  const w = Weights.of(reg, true);
  try {
    const img = encodeImages(w, c, dev.nImages, (s, e) => dev.images.readRows(s, e));
    const cap = encodeCaptionTokens(w, c, tokens);
    const sims = scoreMatrix(w, c, img, cap);
    return evaluate(sims, dev.nImages, dev.nCaptions);
  } finally {
    w.dispose();
  }
}
