// vsl's own wasm kernels (vsl_kernels.c, built by scripts/build_kernels.sh), instantiated on the memory of this
// thread's tfjs-wasm instance so that they read and write tensors where they lie: a pointer is a tensor's
// memoryOffset. Each thread (main, training worker, score workers) has its own instance of both.
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';

/** The exports of vsl_kernels.wasm (pointers are byte offsets into tfjs-wasm's memory). */
export interface VslKernels {
  graph_attend_fwd(
    P: number,
    R: number,
    N: number,
    S: number,
    nCap: number,
    count: number,
    q: number,
    x: number,
    E: number,
    agg: number,
  ): void;
  graph_attend_bwd(
    P: number,
    R: number,
    N: number,
    S: number,
    nCap: number,
    count: number,
    q: number,
    x: number,
    E: number,
    dAgg: number,
    dL: number,
    dq: number,
    dx: number,
  ): void;
}

/** The parts of tfjs-wasm's backend a kernel uses. */
export interface WasmBackendInternals {
  wasm: { asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(id: unknown): void;
}

const FILE = new URL('../../../../src/ops/kernels/vsl_kernels.wasm', import.meta.url);
let compiled: WebAssembly.Module | null = null;
const instances = new WeakMap<object, VslKernels>();

/** The kernels bound to `backend`'s memory (instantiated once per backend instance). */
export function kernelsOf(backend: WasmBackendInternals): VslKernels {
  let k = instances.get(backend);
  if (!k) {
    compiled ??= new WebAssembly.Module(fs.readFileSync(FILE));
    const inst = new WebAssembly.Instance(compiled, { env: { memory: backend.wasm.asm.memory } });
    k = inst.exports as unknown as VslKernels;
    instances.set(backend, k);
  }
  return k;
}

/** The byte offset of a tensor's data in the wasm heap. */
export function ptr(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}
