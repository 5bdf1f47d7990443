// The step engine a training run uses: one thread, or two with the training worker (stepEngine.ts says what a
// step engine does; twoThreadEngine.ts how the two threads share a step).
import type { ModelConfig } from '../model/config.js';
import { oneThreadEngine, type StepEngine } from './stepEngine.js';
import { StepPartner } from './stepPartner.js';
import { twoThreadEngine } from './twoThreadEngine.js';

/** A step engine for `threads` (1, or 2 with the training worker); close() stops the worker. */
export async function startStepEngine(o: {
  threads: number;
  backend: string;
  config: ModelConfig;
  chunkBytes: number;
}): Promise<{ engine: StepEngine; close: () => Promise<void> }> {
  if (o.threads < 2) return { engine: oneThreadEngine(o.chunkBytes), close: async () => {} };
  const partner = await StepPartner.start(o);
  return { engine: twoThreadEngine(partner, o.chunkBytes), close: () => partner.close() };
}
