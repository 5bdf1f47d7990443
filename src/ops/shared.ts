// Typed arrays on SharedArrayBuffers: worker threads read and write them in place, with no copy on hand-over.
import * as tf from '@tensorflow/tfjs';

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
  const b = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  const values =
    tf.getBackend() === 'wasm' && t.dtype === 'float32' && b.typedArrayFromHeap
      ? b.typedArrayFromHeap(t)
      : (t.dataSync() as Float32Array);
  out.set(values, offset);
  return offset + values.length;
}
