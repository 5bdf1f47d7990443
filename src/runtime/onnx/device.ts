// The device of the onnx engine's sessions (`vsl --device`): ONNX Runtime's CPU provider (the default), or its
// CUDA provider with the CPU one behind it for the operators CUDA lacks. Kept in the environment so that the
// score worker threads, which get a copy of it when they start, open their sessions on the same device.
// Needs no onnxruntime-node import: the CLI sets it before anything loads.
export const ONNX_DEVICES = ['cpu', 'cuda'] as const;
export type OnnxDevice = (typeof ONNX_DEVICES)[number];

const VAR = 'VSL_ONNX_DEVICE';

export function setOnnxDevice(d: OnnxDevice): void {
  process.env[VAR] = d;
}

/** ONNX Runtime's execution providers for the device set (cpu unless set). */
export function executionProviders(): string[] {
  return process.env[VAR] === 'cuda' ? ['cuda', 'cpu'] : ['cpu'];
}
