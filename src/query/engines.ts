// The scoring engines that `vsl query --engine` and `vsl serve --engine` can name: each a QueryScorer factory
// (scorer.ts). A new engine is its own file plus one line here.
import { VslError } from '../util/errors.js';
import type { ScorerFactory } from './scorer.js';
import { openTfjsScorer } from './tfjsScorer.js';

const ENGINES: Record<string, ScorerFactory> = {
  tfjs: openTfjsScorer,
};

export const DEFAULT_ENGINE = 'tfjs';

export function engineNames(): string[] {
  return Object.keys(ENGINES);
}

export function scorerFactory(name: string): ScorerFactory {
  const f = ENGINES[name];
  if (!f) throw new VslError(`--engine: expected one of ${engineNames().join(', ')}, found ${JSON.stringify(name)}`);
  return f;
}
