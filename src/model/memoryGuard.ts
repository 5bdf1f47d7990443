// The wasm backend's heap (wasm32, ~3.84 GiB) overflows silently: a failed allocation returns offset 0
// and the next tensor overwrites another. vsl therefore sizes its chunks from an estimate and checks the
// heap after every chunk, refusing to go on (before any update is applied) when it came near the cap.
import * as tf from '@tensorflow/tfjs';
import { VslError } from '../util/errors.js';

export const GiB = 1024 ** 3;
/** Refuse when the live tensors or the wasm heap pass this (well below the ~3.84 GiB cap). */
export const HEAP_GUARD_BYTES = 3.25 * GiB;

/** Size of the wasm heap in bytes, or null on other backends. */
export function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength ?? null;
}

/** Throw a clear error when memory has come near the wasm cap; `what` says which computation. */
export function checkHeap(what: string): void {
  if (tf.getBackend() !== 'wasm') return;
  const live = tf.memory().numBytes;
  const heap = wasmHeapBytes() ?? 0;
  if (live > HEAP_GUARD_BYTES || heap > HEAP_GUARD_BYTES + 0.5 * GiB) {
    throw new VslError(
      `${what}: the wasm heap is near its 3.84 GiB limit (live tensors ${(live / GiB).toFixed(2)} GiB, heap ` +
        `${(heap / GiB).toFixed(2)} GiB); past it tensors overwrite each other silently, so vsl stops here. ` +
        'Use a smaller --chunk-mb or --batch-size.',
      3,
    );
  }
}

/** Refuse up front a computation whose estimated working set would pass the guard. */
export function refuseIfTooLarge(what: string, estimatedBytes: number): void {
  if (tf.getBackend() !== 'wasm') return;
  const live = tf.memory().numBytes;
  if (live + estimatedBytes > HEAP_GUARD_BYTES) {
    throw new VslError(
      `${what}: needs about ${(estimatedBytes / GiB).toFixed(2)} GiB on top of ${(live / GiB).toFixed(2)} GiB in use, ` +
        `past the ${(HEAP_GUARD_BYTES / GiB).toFixed(2)} GiB guard below the wasm heap limit; use a smaller --chunk-mb or --batch-size.`,
      3,
    );
  }
}
