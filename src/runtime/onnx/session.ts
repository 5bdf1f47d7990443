// ONNX Runtime sessions for vsl's graphs, from bytes in memory or from a file, with the options vsl runs them
// with: a fixed number of intra-op threads (default 1: parallelism comes from one session per worker thread, or
// set 2 for one session on both cores), no spinning of idle pool threads (they would burn a core that another
// worker or process needs), every graph optimisation. ORT's errors become one VslError line that names the graph
// (the file, or "in-memory graph X") and ORT's own reason. The device (cpu, or cuda) is device.ts's.
import fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { VslError } from '../../util/errors.js';
import { executionProviders } from './device.js';

export interface SessionOptions {
  /** intra-op threads of the session (1) */
  intraOpThreads?: number;
  /** let idle pool threads spin (false: session.intra_op.allow_spinning = 0) */
  allowSpinning?: boolean;
}

/** A graph to load: its bytes with a name for messages, or a file. */
export type GraphSource = { bytes: Uint8Array; name: string } | { path: string };

export const sourceLabel = (s: GraphSource) => ('path' in s ? s.path : `in-memory graph ${s.name}`);

/** ORT's reason on one line (its messages run over several: which input, which index, got, expected). */
function reason(e: unknown): string {
  const msg = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
  return msg || 'unknown error';
}

// ORT's own logger would print its errors natively on stderr too, over several lines: the VslError says them once
ort.env.logLevel = 'fatal';

function sessionOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: executionProviders(),
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: o.intraOpThreads ?? 1,
    interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: o.allowSpinning ? '1' : '0' } } },
    logSeverityLevel: 3, // errors only: ORT's warnings (shape merges, unused initializers) are not for users
  };
}

/** A session for `src`; a file that cannot be read or a graph ORT refuses is a VslError naming it. */
export async function createSession(src: GraphSource, o: SessionOptions = {}): Promise<ort.InferenceSession> {
  let bytes: Uint8Array;
  if ('path' in src) {
    try {
      bytes = fs.readFileSync(src.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new VslError(
        `${src.path}: cannot read the ONNX graph${code === 'ENOENT' ? ': file not found' : `: ${reason(e)}`}`,
      );
    }
  } else {
    bytes = src.bytes;
  }
  try {
    return await ort.InferenceSession.create(bytes, sessionOptions(o));
  } catch (e) {
    throw new VslError(`${sourceLabel(src)}: ONNX Runtime cannot load it: ${reason(e)}`);
  }
}

export type Feeds = Record<string, ort.Tensor>;

/** Run a session; an ORT failure (a bad shape, out of memory) is a VslError naming the graph. */
export async function runSession(
  session: ort.InferenceSession,
  label: string,
  feeds: Feeds,
): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await session.run(feeds);
  } catch (e) {
    throw new VslError(`${label}: ONNX Runtime failed to run it: ${reason(e)}`);
  }
}

export const f32Tensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
export const i32Tensor = (data: Int32Array, dims: number[]) => new ort.Tensor('int32', data, dims);

/** The float32 data of an output. */
export function outputData(out: ort.InferenceSession.ReturnType, name: string): Float32Array {
  const t = out[name];
  if (!t || t.type !== 'float32') throw new Error(`graph output ${name} missing or not float32`);
  return t.data as Float32Array;
}
