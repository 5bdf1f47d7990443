// The scoring engine of an evaluation, a validation or a query: ONNX Runtime ('onnx', src/runtime/onnx/) or tfjs
// ('tfjs', the selected tfjs backend). `auto` (the default) takes onnx where onnxruntime-node loads and the model's
// similarity module has an ONNX graph, else tfjs, and says why; an explicit `onnx` that cannot run is an error.
// The engine's line at a terminal is one short line; the reasons behind a fallback are one line too.
import os from 'node:os';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { onnxAvailable } from './onnx/available.js';
import { hasModuleGraph } from './onnx/reasoningGraph.js';
import type { EncodedCaptions, EncodedImages } from './encode.js';
import type { Scorer } from './scorePool.js';

const ENGINE_NAMES = ['onnx', 'tfjs'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];
export type EngineChoice = EngineName | 'auto';

export interface EngineInfo {
  name: EngineName;
  /** onnxruntime-node's version (onnx) */
  version?: string;
  /** why auto did not take onnx (tfjs chosen by fallback) */
  fallback?: string;
}

/** An --engine value: auto, onnx or tfjs. */
export function parseEngine(value: string | undefined, flag = '--engine'): EngineChoice {
  const v = value ?? 'auto';
  if (v === 'auto' || (ENGINE_NAMES as readonly string[]).includes(v)) return v as EngineChoice;
  throw new VslError(`${flag}: expected one of auto, ${ENGINE_NAMES.join(', ')}, found ${JSON.stringify(v)}`);
}

/** The engine for a model of similarity module `module` (see the header). */
export async function resolveEngine(choice: EngineChoice, module: string, flag = '--engine'): Promise<EngineInfo> {
  if (choice === 'tfjs') return { name: 'tfjs' };
  const ort = await onnxAvailable();
  const why = !ort.ok ? ort.reason! : hasModuleGraph(module) ? null : `no ONNX graph for similarity module ${module}`;
  if (why === null) return { name: 'onnx', version: ort.version };
  if (choice === 'onnx') throw new VslError(`${flag} onnx: ${why}; use ${flag} tfjs`);
  return { name: 'tfjs', fallback: why };
}

export function cpuCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Fewest pairs worth the onnx worker pool: starting 2 workers (their sessions) costs about what one in-process
 * session on 2 threads (~80% of the pool's rate) loses over this many pairs (docs/onnx-engine.md).
 */
const ONNX_POOL_MIN_PAIRS = 50_000;

/** Threads of an in-process onnx session, and workers of a pool: both cores, at most 2. */
export const onnxThreads = () => Math.max(1, Math.min(2, cpuCores()));

/** Default onnx score workers for `pairs` pairs: a pool for large work, else 1 (in process on onnxThreads). */
export const onnxDefaultWorkers = (pairs: number) => (pairs >= ONNX_POOL_MIN_PAIRS ? onnxThreads() : 1);

/** The engine's line: `engine: onnx (onnxruntime-node 1.31.1, 2 threads)`; a fallback adds its reason. */
export function engineLine(e: EngineInfo, threads?: string, backend?: string): string {
  const detail = (...parts: (string | undefined)[]) => parts.filter(Boolean).join(', ');
  if (e.name === 'onnx') return `engine: onnx (${detail(`onnxruntime-node ${e.version}`, threads)})`;
  return `engine: tfjs (${detail(backend ?? 'tfjs', threads)})` + (e.fallback ? `; onnx not used: ${e.fallback}` : '');
}

export function logEngine(e: EngineInfo, threads: string, backend?: string): void {
  log().info(engineLine(e, threads, backend));
}

/** What evaluation and validation ask of an engine (evalEngine.ts opens one). */
export interface ScorerRequest {
  img: EncodedImages;
  cap: EncodedCaptions;
  /** score threads: workers > 1 = a worker pool, 1 = in process */
  workers: number;
  imageBlock?: number;
  captionBlock?: number;
}

export interface EvalEngine {
  readonly info: EngineInfo;
  encodeImages(n: number, readRows: (s: number, e: number) => Float32Array, batch: number): Promise<EncodedImages>;
  encodeCaptions(tokens: Int32Array[], batch?: number): Promise<EncodedCaptions>;
  /** Default score threads for `pairs` pairs. */
  defaultWorkers(pairs: number): number;
  /** How `workers` score threads are spent, for the engine's line ("2 threads"). */
  threadsText(workers: number): string;
  scorer(r: ScorerRequest): Promise<Scorer>;
  close(): Promise<void>;
}
