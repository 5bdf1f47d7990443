// The onnx side of runtime/evalEngine.ts: the model's graphs exported in memory from its registry (no file; a
// validation exports the weights as they are at that step), images and captions encoded on one session with
// every core, scores on a pool of worker threads with one 1-thread session each for large work, or in process
// on one session with every core (up to 2) where the work is too small to pay for starting workers.
import type { ModelConfig } from '../../model/config.js';
import type { ParamRegistry } from '../../model/params.js';
import { onnxDefaultWorkers, onnxThreads, type EngineInfo, type EvalEngine, type ScorerRequest } from '../engine.js';
import type { EncodedCaptions, EncodedImages } from '../encode.js';
import type { Scorer } from '../scorePool.js';
import { exportGraphs, type OnnxGraphs } from './graphs.js';
import { OnnxModel } from './runner.js';
import { OnnxScorePool } from './scorePool.js';

class InProcessOnnxScorer implements Scorer {
  readonly workers = 1;
  constructor(
    private readonly m: OnnxModel,
    private readonly img: EncodedImages,
    private readonly cap: EncodedCaptions,
  ) {}
  score(imageRange: [number, number], captionRange: [number, number], onProgress?: (d: number, t: number) => void) {
    return this.m.scoreMatrix(this.img, this.cap, { imageRange, captionRange, onProgress });
  }
  close(): Promise<void> {
    return this.m.release();
  }
}

export class OnnxEvalEngine implements EvalEngine {
  private constructor(
    readonly info: EngineInfo,
    private readonly graphs: OnnxGraphs,
    private readonly encoder: OnnxModel,
  ) {}

  static async open(info: EngineInfo, reg: ParamRegistry, config: ModelConfig, source?: string) {
    const graphs = exportGraphs(reg, config, { source });
    const encoder = await OnnxModel.fromGraphs(graphs, { only: ['image', 'caption'], intraOpThreads: onnxThreads() });
    return new OnnxEvalEngine(info, graphs, encoder);
  }

  encodeImages(n: number, readRows: (s: number, e: number) => Float32Array, batch: number): Promise<EncodedImages> {
    return this.encoder.encodeImages(n, readRows, batch);
  }

  encodeCaptions(tokens: Int32Array[], batch = 128): Promise<EncodedCaptions> {
    return this.encoder.encodeCaptionTokens(tokens, batch);
  }

  defaultWorkers(pairs: number): number {
    return onnxDefaultWorkers(pairs);
  }

  threadsText(workers: number): string {
    return workers > 1 ? `${workers} workers x 1 thread` : `${onnxThreads()} threads`;
  }

  async scorer(r: ScorerRequest): Promise<Scorer> {
    if (r.workers > 1) return OnnxScorePool.start({ workers: r.workers, graph: this.graphs, img: r.img, cap: r.cap });
    const m = await OnnxModel.fromGraphs(this.graphs, { only: ['score'], intraOpThreads: onnxThreads() });
    return new InProcessOnnxScorer(m, r.img, r.cap);
  }

  close(): Promise<void> {
    return this.encoder.release();
  }
}
