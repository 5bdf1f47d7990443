// The wasm backend's heap (wasm32, ~3.84 GiB) overflows silently: a failed allocation returns offset 0
// and the next tensor overwrites another. vsl therefore sizes its chunks from an estimate, refuses a chunk
// estimated too large up front, and turns the failed allocation itself into an error (guardAllocations):
// the run stops on the allocation that would have corrupted a tensor, before any update is applied.
import * as tf from '@tensorflow/tfjs';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';

export const GiB = 1024 ** 3;
/** Warn once when the wasm heap has grown past this (the cap is ~3.84 GiB). */
const HEAP_WARN_BYTES = 3.5 * GiB;
/**
 * The largest working set one scoring chunk may be estimated to need: a chunk's backward pass grows the heap to
 * a multiple of its estimate (docs/performance.md, Training memory), and the heap stops at ~3.84 GiB.
 */
const CHUNK_LIMIT_BYTES = 1.5 * GiB;
/**
 * train's --chunk-mb default, per thread: large chunks recompute less, and 640 keeps SGR's batch-128 step under the
 * resident memory of the issue-11 baseline (docs/performance.md, Training memory).
 */
export const DEFAULT_CHUNK_MB = 640;

/** Size of the wasm heap in bytes, or null on other backends. */
export function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength ?? null;
}

interface WasmModule {
  _malloc: (n: number) => number;
  _free: (p: number) => void;
}

/**
 * Make a failed allocation of the wasm backend an error. tfjs-wasm uses the offset malloc returns without a
 * check, so when the heap cannot grow any more, malloc's 0 put the new tensor over whatever lives at offset 0.
 * Call once after the wasm backend started (each worker thread has its own instance and calls it too).
 */
export function guardAllocations(): void {
  if (tf.getBackend() !== 'wasm') return;
  const wasm = (tf.backend() as unknown as { wasm: WasmModule }).wasm;
  // emscripten's _malloc replaces itself by the real export on its first call: make that happen first
  wasm._free(wasm._malloc(16));
  const malloc = wasm._malloc;
  wasm._malloc = (n: number) => {
    const p = malloc(n);
    if (p === 0 && n > 0) {
      throw new VslError(
        `the wasm heap is full (${((wasmHeapBytes() ?? 0) / GiB).toFixed(2)} GiB of its ~3.84 GiB): an allocation of ` +
          `${(n / 2 ** 20).toFixed(1)} MB failed. tfjs-wasm would have placed that tensor over others, so vsl stops here ` +
          '(no update was applied). Use a smaller --chunk-mb or --batch-size.',
        3,
      );
    }
    return p;
  };
}

let warned = false;
/**
 * Note (once) that the heap has grown near its cap. Not an error by itself: the allocator reuses freed
 * memory, and an allocation that really cannot be served is caught by guardAllocations.
 */
export function checkHeap(what: string): void {
  const heap = wasmHeapBytes();
  if (heap !== null && heap > HEAP_WARN_BYTES && !warned) {
    warned = true;
    log().warn(
      { heapGiB: Number((heap / GiB).toFixed(2)), where: what },
      `${what}: the wasm heap has grown to ${(heap / GiB).toFixed(2)} GiB of its ~3.84 GiB; if an allocation fails, ` +
        'the run stops with an error (smaller --chunk-mb or --batch-size use less)',
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
