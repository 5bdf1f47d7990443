// Typed arrays on SharedArrayBuffers: worker threads read and write them in place, with no copy on hand-over.
import * as tf from '@tensorflow/tfjs';
import type { WasmBackendInternals } from './kernels/module.js';

/** n float32 values, zero-filled, on a SharedArrayBuffer. */
export function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * Float32Array.BYTES_PER_ELEMENT));
}

/** n int32 values, zero-filled, on a SharedArrayBuffer. */
export function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * Int32Array.BYTES_PER_ELEMENT));
}

/**
 * Copy tensor t's float32 values into out at offset: straight from tfjs-wasm's heap (dataSync would copy them to
 * a new array first: 50 MB of caption parameters a training step), elsewhere through dataSync.
 */
export function copyInto(t: tf.Tensor, out: Float32Array, offset = 0): number {
  const values =
    tf.getBackend() === 'wasm' && t.dtype === 'float32'
      ? (tf.backend() as unknown as WasmBackendInternals).typedArrayFromHeap(t)
      : t.dataSync();
  out.set(values, offset);
  return offset + values.length;
}
