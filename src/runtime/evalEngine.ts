// One interface over the two engines for evaluation and validation: encode the images and captions, then score
// blocks with a Scorer (scorePool.ts's interface, which eval/scoreBlocks.ts drives). The tfjs side is today's
// encode.ts + createScorer; the onnx side (onnx/evalEngine.ts) is imported only when onnx was chosen, so that a
// process on tfjs never loads onnxruntime-node.
import type { ModelConfig } from '../model/config.js';
import type { ParamRegistry } from '../model/params.js';
import { Weights } from '../model/weights.js';
import { encodeCaptionTokens, encodeImages } from './encode.js';
import type { EngineInfo, EvalEngine, ScorerRequest } from './engine.js';
import { createScorer, defaultWorkers, type Scorer } from './scorePool.js';

export type { EvalEngine } from './engine.js';

class TfjsEvalEngine implements EvalEngine {
  private readonly w: Weights;
  constructor(
    readonly info: EngineInfo,
    private readonly reg: ParamRegistry,
    private readonly config: ModelConfig,
    private readonly backend: string,
  ) {
    this.w = Weights.of(reg);
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- the interface is async (ORT's runs are)
  async encodeImages(n: number, readRows: (s: number, e: number) => Float32Array, batch: number) {
    return encodeImages(this.w, this.config, n, readRows, batch);
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- as encodeImages
  async encodeCaptions(tokens: Int32Array[], batch = 128) {
    return encodeCaptionTokens(this.w, this.config, tokens, batch);
  }
  defaultWorkers(): number {
    return defaultWorkers(this.backend);
  }
  threadsText(workers: number): string {
    return `${workers} thread${workers === 1 ? '' : 's'}`;
  }
  scorer(r: ScorerRequest): Promise<Scorer> {
    return createScorer({ ...r, backend: this.backend, reg: this.reg, config: this.config });
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- as encodeImages
  async close(): Promise<void> {
    this.w.dispose();
  }
}

/** The engine `info` names, on the model `reg` (its weights as they are now: validation passes live ones). */
export async function openEvalEngine(
  info: EngineInfo,
  reg: ParamRegistry,
  config: ModelConfig,
  backend: string,
  source?: string,
): Promise<EvalEngine> {
  if (info.name === 'tfjs') return new TfjsEvalEngine(info, reg, config, backend);
  const { OnnxEvalEngine } = await import('./onnx/evalEngine.js');
  return OnnxEvalEngine.open(info, reg, config, source);
}
