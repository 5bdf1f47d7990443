// vsl's own wasm modules (vsl_kernels.c, vsl_gemm.c, built by scripts/build_kernels.sh), instantiated on the
// memory of this thread's tfjs-wasm instance so that they read and write tensors where they lie: a pointer is a
// tensor's memoryOffset. Each thread (main, training worker, score workers) has its own instances.
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
  adam_step(
    n: number,
    p: number,
    g: number,
    m: number,
    v: number,
    p1: number,
    m1: number,
    v1: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    sqrtBc2: number,
    eps: number,
    stepSize: number,
    scaled: number,
    scale: number,
  ): void;
  tanh_f32(n: number, x: number, y: number): void;
  transpose_f32(batch: number, rows: number, cols: number, x: number, y: number): void;
}

/** The parts of tfjs-wasm's backend that vsl's kernels and kernel replacements use. */
export interface WasmBackendInternals {
  wasm: { asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(id: unknown): void;
  incRef(dataId: unknown): void;
  /** a view of the tensor's values on the heap (detached by the heap's next growth: use it at once) */
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** The exports of vsl_gemm.wasm (relaxed SIMD; see ops/gemm.ts). */
export interface GemmKernel {
  gemm(
    batch: number,
    M: number,
    N: number,
    K: number,
    a: number,
    aBatch: number,
    ars: number,
    acs: number,
    b: number,
    bBatch: number,
    brs: number,
    bcs: number,
    packed: number,
    c: number,
    bias: number,
    relu: number,
    scratch: number,
  ): void;
  gemm_scratch_floats(): number;
  gemm_packed_floats(K: number, N: number): number;
  gemm_pack(K: number, N: number, b: number, brs: number, bcs: number, out: number): void;
}

const dir = '../../../../src/ops/kernels/';
const compiled = new Map<string, WebAssembly.Module>();
const instances = new Map<string, WeakMap<object, unknown>>();

/** The bytes of one of vsl's wasm modules (`name`.wasm beside its C source). */
export function moduleBytes(name: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(fs.readFileSync(new URL(`${dir}${name}.wasm`, import.meta.url)));
}

/** Module `name` instantiated on `backend`'s memory (once per backend instance). */
function instanceOf<T>(name: string, backend: WasmBackendInternals): T {
  let perBackend = instances.get(name);
  if (!perBackend) instances.set(name, (perBackend = new WeakMap()));
  let k = perBackend.get(backend) as T | undefined;
  if (!k) {
    let m = compiled.get(name);
    if (!m) compiled.set(name, (m = new WebAssembly.Module(moduleBytes(name))));
    k = new WebAssembly.Instance(m, { env: { memory: backend.wasm.asm.memory } }).exports as T;
    perBackend.set(backend, k);
  }
  return k;
}

/** The kernels of vsl_kernels.wasm bound to `backend`'s memory. */
export function kernelsOf(backend: WasmBackendInternals): VslKernels {
  return instanceOf<VslKernels>('vsl_kernels', backend);
}

/** The product of vsl_gemm.wasm bound to `backend`'s memory (the engine must accept relaxed SIMD: ops/gemm.ts). */
export function gemmOf(backend: WasmBackendInternals): GemmKernel {
  return instanceOf<GemmKernel>('vsl_gemm', backend);
}

/** The byte offset of a tensor's data in the wasm heap. */
export function ptr(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}
