// Assertions several test files share.
import assert from 'node:assert/strict';
import { VslError } from '../../src/util/errors.js';

/** max |a - b| over two equally long arrays (a length mismatch fails the test). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The promise rejects with a VslError whose message contains every one of `parts`. */
export async function rejectsWith(p: Promise<unknown>, parts: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof VslError, `expected VslError, got ${String((e as Error)?.stack ?? e)}`);
    for (const s of parts) assert.ok(e.message.includes(s), `${JSON.stringify(e.message)} lacks ${JSON.stringify(s)}`);
    return true;
  });
}
