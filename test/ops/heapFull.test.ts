// Filling the wasm heap must end in an error naming the failed allocation, not in a tensor written over
// another (tfjs-wasm uses malloc's 0 unchecked; src/ops/memoryGuard.ts guardAllocations). This process
// fills its own heap to the ~3.84 GiB cap (node's test runner gives each file its own process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/ops/backend.js';
import { wasmHeapBytes } from '../../src/ops/memoryGuard.js';
import { setLogLevel } from '../../src/util/log.js';

test('a wasm allocation that cannot be served is an error, and earlier tensors keep their values', async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
  const marker = tf.tensor1d([1, 2, 3, 4]);
  const held: tf.Tensor[] = [];
  let error: unknown = null;
  try {
    for (let i = 0; i < 40; i++) held.push(tf.fill([64 * 2 ** 20], 7)); // 256 MB each: 40 would be 10 GiB
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof Error, 'filling the heap did not fail');
  assert.equal(error.name, 'VslError');
  assert.match(error.message, /wasm heap is full .* an allocation of 256\.0 MB failed/);
  assert.ok((wasmHeapBytes() ?? 0) > 3.5 * 2 ** 30, `heap ${wasmHeapBytes()}`);
  assert.ok(held.length >= 13 && held.length < 16, `${held.length} blocks of 256 MB fitted`);
  assert.deepEqual(Array.from(marker.dataSync()), [1, 2, 3, 4]); // nothing was written over it
  assert.equal(held[held.length - 1].dataSync()[0], 7);
  tf.dispose(held);
  // the freed memory serves new allocations again
  const again = tf.fill([64 * 2 ** 20], 5);
  assert.equal(again.dataSync()[64 * 2 ** 20 - 1], 5);
  tf.dispose([again, marker]);
});
