// The similarity modules vsl knows, by the name that --module and checkpoints use. A new module is one file that
// exports a SimilarityModule (see sgr.ts, saf.ts) and one line below.
import { VslError } from '../util/errors.js';
import type { ModelConfig } from './config.js';
import type { SimilarityModule } from './similarityModule.js';
import { SAF } from './saf.js';
import { SGR } from './sgr.js';

const MODULES = new Map<string, SimilarityModule>();

/** Add a module (the two built-in ones here; tests add their own). A name can be registered once. */
export function registerModule(m: SimilarityModule): void {
  if (MODULES.has(m.name)) throw new Error(`a similarity module named ${m.name} is registered already`);
  MODULES.set(m.name, m);
}

registerModule(SGR);
registerModule(SAF);

export function moduleNames(): string[] {
  return [...MODULES.keys()];
}

/** The module of a model; an unknown name is a VslError listing the known ones. */
export function moduleOf(c: { module: string }): SimilarityModule {
  const m = MODULES.get(c.module);
  if (!m) throw new VslError(`unknown similarity module '${c.module}' (known: ${moduleNames().join(', ')})`);
  return m;
}

/** The module (and its own options) whose parameters a checkpoint's keys hold, if any. */
export function detectModule(keys: readonly string[]): Partial<ModelConfig> | undefined {
  for (const m of MODULES.values()) {
    const found = m.detect(keys);
    if (found) return found;
  }
  return undefined;
}
