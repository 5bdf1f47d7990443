// tfjs-wasm's matrix products (BatchMatMul, _FusedMatMul) on vsl's own kernel (kernels/vsl_gemm.c), which uses
// relaxed SIMD's fused multiply-add where tfjs' XNNPACK build uses a multiply and an add: the products are most
// of a training step, and this one runs them ~1.5x faster on one core (docs/performance.md). It also takes
// transposed and batched operands at full speed, which tfjs-wasm sends to a generic loop.
//
// Relaxed SIMD is on by default from Node 22 (V8 11.4); Node 20's V8 has it behind --experimental-wasm-relaxed-simd,
// which is turned on here (the flag is process-wide and only admits the new instructions). Where the module still
// does not validate, or VSL_MATMUL=xnnpack is set, tfjs' own kernels stay. The fused multiply-add rounds once where
// a multiply and an add round twice: results differ from XNNPACK's in the last bits, the same way on every run.
import v8 from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import { gemmOf, moduleBytes, ptr, type WasmBackendInternals } from './kernels/module.js';

type TensorInfo = tf.TensorInfo;

/** Whether this engine accepts relaxed SIMD (turning on Node 20's V8 flag for it if needed). */
function relaxedSimd(): boolean {
  const bytes = moduleBytes('vsl_gemm');
  if (WebAssembly.validate(bytes)) return true;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return WebAssembly.validate(bytes);
}

const scratch = new WeakMap<object, number>();

/** The packing buffer of `b`'s product, allocated once on its heap (~1 MB) and kept. */
function scratchOf(b: WasmBackendInternals): number {
  let p = scratch.get(b);
  if (p === undefined) {
    p = ptr(b, b.makeOutput([gemmOf(b).gemm_scratch_floats()], 'float32'));
    scratch.set(b, p);
  }
  return p;
}

/**
 * Right operands packed ahead, most recent first: a product of few rows (the GRU's recurrent one, once per time
 * step, 20-60 times with the same weight) would otherwise spend a third of its time packing the weight again.
 * A right operand is packed ahead the second time it comes (`seen` remembers the last few), so that the one-off
 * ones (an image's regions in the local attention) neither pay for a buffer nor push the kept ones out. Keyed by
 * the tensor's data: tfjs tensors never change their values, so the same dataId has the same values.
 */
interface PackCache {
  kept: { dataId: unknown; info: TensorInfo }[];
  seen: unknown[];
}
const packCaches = new WeakMap<object, PackCache>();
const PACK_AHEAD_MAX_ROWS = 96;
const PACK_AHEAD_MIN_FLOATS = 1 << 16;
const PACK_AHEAD_KEEP = 2;
const PACK_AHEAD_SEEN = 8;

/** b packed ahead (kept for the next products with it), or 0 when the product should pack as it goes. */
function packedAhead(
  backend: WasmBackendInternals,
  b: TensorInfo,
  rows: number,
  K: number,
  N: number,
  brs: number,
  bcs: number,
): number {
  if (rows > PACK_AHEAD_MAX_ROWS || K * N < PACK_AHEAD_MIN_FLOATS) return 0;
  let cache = packCaches.get(backend);
  if (!cache) packCaches.set(backend, (cache = { kept: [], seen: [] }));
  const { kept, seen } = cache;
  const i = kept.findIndex((k) => k.dataId === b.dataId);
  if (i >= 0) {
    const [hit] = kept.splice(i, 1);
    kept.unshift(hit);
    return ptr(backend, hit.info);
  }
  const j = seen.indexOf(b.dataId);
  if (j < 0) {
    seen.unshift(b.dataId);
    seen.length = Math.min(seen.length, PACK_AHEAD_SEEN);
    return 0;
  }
  seen.splice(j, 1);
  const g = gemmOf(backend);
  const info = backend.makeOutput([g.gemm_packed_floats(K, N)], 'float32');
  g.gemm_pack(K, N, ptr(backend, b), brs, bcs, ptr(backend, info));
  kept.unshift({ dataId: b.dataId, info });
  for (const old of kept.splice(PACK_AHEAD_KEEP)) backend.disposeData(old.info.dataId);
  return ptr(backend, info);
}

/**
 * act(a @ b + bias) for float32 operands of rank >= 2 with the given transposes; batch dimensions equal or one side's
 * all 1; bias of N values along the last axis. Anything else returns null (tfjs' own kernel takes it).
 */
function product(
  backend: WasmBackendInternals,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias: TensorInfo | undefined,
  relu: boolean,
): TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  const [ra, rb] = [a.shape.length, b.shape.length];
  const [M, K] = transposeA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [K2, N] = transposeB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (K !== K2) return null; // tfjs' kernel words the error
  const [outerA, outerB] = [a.shape.slice(0, -2), b.shape.slice(0, -2)];
  const [batchA, batchB] = [tf.util.sizeFromShape(outerA), tf.util.sizeFromShape(outerB)];
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  const batch = tf.util.sizeFromShape(outer);
  if (!(batchA === batch || batchA === 1) || !(batchB === batch || batchB === 1)) return null;
  if (bias) {
    if (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== N || bias.shape[bias.shape.length - 1] !== N)
      return null;
  }
  const out = backend.makeOutput([...outer, M, N], 'float32');
  if (batch * M * N === 0) return out;
  // one B for the whole batch and A's rows one after the other: a single product of batch x M rows
  const fold = batchB === 1 && batch > 1 && !transposeA;
  const [brs, bcs] = transposeB ? [1, K] : [N, 1];
  const packed = batchB === 1 ? packedAhead(backend, b, fold ? batch * M : M, K, N, brs, bcs) : 0;
  gemmOf(backend).gemm(
    fold ? 1 : batch,
    fold ? batch * M : M,
    N,
    K,
    ptr(backend, a),
    batchA > 1 ? M * K : 0,
    transposeA ? 1 : K,
    transposeA ? M : 1,
    ptr(backend, b),
    batchB > 1 ? K * N : 0,
    brs,
    bcs,
    packed,
    ptr(backend, out),
    bias ? ptr(backend, bias) : 0,
    relu ? 1 : 0,
    scratchOf(backend),
  );
  return out;
}

let takesTransposes = false;

/** Whether tfjs-wasm's products on this thread take transposed operands at full speed (vsl's kernel runs them). */
export function productsTakeTransposes(): boolean {
  return takesTransposes;
}

interface ProductAttrs {
  transposeA: boolean;
  transposeB: boolean;
  activation?: string;
}

/**
 * Put vsl's product under tfjs-wasm's BatchMatMul and _FusedMatMul (call once per thread, after the wasm backend
 * is registered). Returns what runs the products: 'vsl-gemm' or 'xnnpack' (relaxed SIMD missing, or
 * VSL_MATMUL=xnnpack).
 */
export function registerGemmKernels(): 'vsl-gemm' | 'xnnpack' {
  if (process.env.VSL_MATMUL === 'xnnpack' || !relaxedSimd()) return 'xnnpack';
  for (const kernelName of ['BatchMatMul', '_FusedMatMul']) {
    const original = tf.getKernel(kernelName, 'wasm');
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      ...original,
      kernelFunc: (args) => {
        const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
        const { transposeA, transposeB, activation = 'linear' } = args.attrs as unknown as ProductAttrs;
        const done =
          a && b && !preluActivationWeights && (activation === 'linear' || activation === 'relu')
            ? product(
                args.backend as unknown as WasmBackendInternals,
                a,
                b,
                transposeA,
                transposeB,
                bias,
                activation === 'relu',
              )
            : null;
        return done ?? original.kernelFunc(args);
      },
    });
  }
  takesTransposes = true;
  return 'vsl-gemm';
}
