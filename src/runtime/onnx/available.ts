// Whether ONNX Runtime loads in this process: the one place that imports onnxruntime-node dynamically, so that a
// missing or broken native addon makes vsl fall back to tfjs (with the reason) instead of failing at start-up.
// The answer is cached: the addon loads once per process.
export interface OnnxAvailability {
  ok: boolean;
  /** onnxruntime-node's version (when ok) */
  version?: string;
  /** why it did not load, one line (when not ok) */
  reason?: string;
}

let cached: Promise<OnnxAvailability> | undefined;

async function probe(): Promise<OnnxAvailability> {
  if (process.env.VSL_NO_ONNX) return { ok: false, reason: 'VSL_NO_ONNX is set' };
  try {
    const ort = await import('onnxruntime-node');
    return { ok: true, version: ort.env.versions.node ?? ort.env.versions.common };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { ok: false, reason: `onnxruntime-node does not load (${msg})` };
  }
}

export function onnxAvailable(): Promise<OnnxAvailability> {
  cached ??= probe();
  return cached;
}
