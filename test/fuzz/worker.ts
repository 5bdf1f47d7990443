// One fuzz target in a worker thread: builds its base input, generates the seeded mutations with fast-check, runs
// the real reader on each mutated file and reports every outcome to the parent, which watches for hangs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { setLogLevel } from '../../src/util/log.js';
import { MAX_MESSAGE_CHARS, VslError } from '../../src/util/errors.js';
import { applyOps, describeOps, mutationArbitrary } from './mutations.js';
import { canon, TARGETS } from './targets.js';

export type Outcome = 'unchanged' | 'clean-error' | 'unclear-error' | 'crash' | 'hang' | 'garbage';

export interface WorkerInput {
  target: number;
  seed: number;
  cases: number;
  /** The first case to run (after a hang, the parent starts a new worker past it). */
  from: number;
}

export type WorkerMessage =
  | { type: 'ready'; cases: number }
  | { type: 'start'; k: number; ops: string }
  | { type: 'done'; k: number; outcome: Outcome; detail?: string }
  | { type: 'end' };

/** A VslError is clean when it is one printable line, bounded, and names the file. */
function judgeError(e: unknown, file: string): { outcome: Outcome; detail?: string } {
  if (!(e instanceof VslError)) {
    const err = e as Error;
    return { outcome: 'crash', detail: `${err?.name}: ${String(err?.message).slice(0, 300)}` };
  }
  const m = e.message;
  const problems = [
    // eslint-disable-next-line no-control-regex -- a control character in the message is what it looks for
    /[\x00-\x1f\x7f]/.test(m) && 'not one printable line',
    m.length > MAX_MESSAGE_CHARS && `${m.length} characters`,
    !m.includes(file) && 'does not name the file',
  ].filter(Boolean);
  return problems.length
    ? { outcome: 'unclear-error', detail: `${problems.join(', ')}: ${m.slice(0, 300)}` }
    : { outcome: 'clean-error' };
}

async function main(): Promise<void> {
  const input = workerData as WorkerInput;
  const target = TARGETS[input.target];
  setLogLevel('silent');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-fuzz-'));
  try {
    const { base, space } = await target.make(dir);
    const file = path.join(dir, target.fileName);
    fs.writeFileSync(file, base);
    const want = canon(await target.read(file)); // the base itself must read
    const all = fc.sample(mutationArbitrary(space, base.length), { seed: input.seed, numRuns: input.cases });
    parentPort!.postMessage({ type: 'ready', cases: all.length } satisfies WorkerMessage);
    for (let k = input.from; k < all.length; k++) {
      const ops = all[k];
      parentPort!.postMessage({ type: 'start', k, ops: describeOps(ops) } satisfies WorkerMessage);
      fs.writeFileSync(file, applyOps(base, ops, space));
      let verdict: { outcome: Outcome; detail?: string };
      try {
        const got = canon(await target.read(file));
        verdict = got === want ? { outcome: 'unchanged' } : { outcome: 'garbage', detail: got.slice(0, 300) };
      } catch (e) {
        verdict = judgeError(e, file);
      }
      parentPort!.postMessage({ type: 'done', k, ...verdict } satisfies WorkerMessage);
    }
    parentPort!.postMessage({ type: 'end' } satisfies WorkerMessage);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
