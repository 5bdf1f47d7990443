// The wasm backend's heap (wasm32, ~3.84 GiB) overflows silently: a failed allocation returns offset 0
// and the next tensor overwrites another. vsl therefore sizes its chunks from an estimate and checks the
// heap after every chunk, refusing to go on (before any update is applied) when it came near the cap.
import * as tf from '@tensorflow/tfjs';
import { VslError } from '../util/errors.js';

export const GiB = 1024 ** 3;
/** Stop when the wasm heap has grown past this (the cap is ~3.84 GiB). */
export const HEAP_GUARD_BYTES = 3.5 * GiB;
/** The largest working set one scoring chunk may be estimated to need. */
export const CHUNK_LIMIT_BYTES = 1.5 * GiB;

/** Size of the wasm heap in bytes, or null on other backends. */
export function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength ?? null;
}

/**
 * Throw a clear error when the wasm heap has grown near its cap; `what` says which computation.
 * The heap size is the measure (tf.memory().numBytes counts a buffer once per tensor that shares it,
 * and on wasm every saved-for-gradient tensor shares its buffer, so it overstates use several-fold).
 */
export function checkHeap(what: string): void {
  const heap = wasmHeapBytes();
  if (heap !== null && heap > HEAP_GUARD_BYTES) {
    throw new VslError(
      `${what}: the wasm heap has grown to ${(heap / GiB).toFixed(2)} GiB, near its 3.84 GiB limit; past it ` +
        'tensors overwrite each other silently, so vsl stops here (no update was applied). ' +
        'Use a smaller --chunk-mb or --batch-size.',
      3,
    );
  }
}

/** Refuse up front a chunk whose estimated working set is larger than one chunk may be. */
export function refuseIfTooLarge(what: string, estimatedBytes: number): void {
  if (tf.getBackend() !== 'wasm') return;
  if (estimatedBytes > CHUNK_LIMIT_BYTES) {
    throw new VslError(
      `${what}: one chunk needs about ${(estimatedBytes / GiB).toFixed(2)} GiB, more than the ` +
        `${(CHUNK_LIMIT_BYTES / GiB).toFixed(2)} GiB a chunk may take inside the 3.84 GiB wasm heap; use a smaller --chunk-mb or --batch-size.`,
      3,
    );
  }
}
