// The scoring engines that `vsl query --engine` and `vsl serve --engine` can name: each a QueryScorer factory
// (scorer.ts). A new engine is its own file plus one line here. `auto` (the default) is onnx where
// onnxruntime-node loads and the model's module has a graph, else tfjs, with the reason logged (runtime/engine.ts).
import { resolveEngine } from '../runtime/engine.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { openOnnxScorer } from './onnxScorer.js';
import type { ScorerFactory } from './scorer.js';
import { openTfjsScorer } from './tfjsScorer.js';

const ENGINES: Record<string, ScorerFactory> = {
  tfjs: openTfjsScorer,
  onnx: openOnnxScorer,
};

export const DEFAULT_ENGINE = 'auto';

export function engineNames(): string[] {
  return ['auto', ...Object.keys(ENGINES)];
}

const auto: ScorerFactory = async (o) => {
  const e = await resolveEngine('auto', o.model.config.module);
  const s = await ENGINES[e.name](o);
  log().info(`engine: ${s.engine}` + (e.fallback ? `; onnx not used: ${e.fallback}` : ''));
  return s;
};

export function scorerFactory(name: string): ScorerFactory {
  const f = name === 'auto' ? auto : ENGINES[name];
  if (!f) throw new VslError(`--engine: expected one of ${engineNames().join(', ')}, found ${JSON.stringify(name)}`);
  return f;
}
