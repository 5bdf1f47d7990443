// Runs each fuzz target in a worker thread with a watchdog: a case that takes longer than the time limit is a hang
// (the worker is ended and a new one goes on after that case), a worker that dies is a crash. Tallies the outcomes.
import { Worker } from 'node:worker_threads';
import type { Outcome, WorkerInput, WorkerMessage } from './worker.js';
import { TARGETS } from './targets.js';

export const OUTCOMES: readonly Outcome[] = ['unchanged', 'clean-error', 'unclear-error', 'crash', 'hang', 'garbage'];
/** What a run may end in: anything else fails it. */
export const ACCEPTED: ReadonlySet<Outcome> = new Set(['unchanged', 'clean-error']);

export interface BadCase {
  k: number;
  outcome: Outcome;
  ops: string;
  detail?: string;
}

export interface TargetReport {
  name: string;
  cases: number;
  counts: Record<Outcome, number>;
  bad: BadCase[];
  seconds: number;
}

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Longest a single case may take before it counts as a hang. */
  caseTimeoutMs?: number;
  /** Names of the targets to run (default all). */
  only?: string[];
  onProgress?: (name: string, done: number, total: number) => void;
}

/** Run the cases [from, cases) of one target in one worker; resolves where it stopped and why. */
function runWorker(
  input: WorkerInput,
  timeoutMs: number,
  record: (k: number, outcome: Outcome, ops: string, detail?: string) => void,
): Promise<{ next: number; finished: boolean }> {
  return new Promise((resolve) => {
    const w = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: input,
      resourceLimits: { maxOldGenerationSizeMb: 2048 },
      stderr: true, // what a reader prints goes nowhere; outcomes are what count
    });
    w.stderr.resume();
    let current = { k: input.from, ops: '(setup)' };
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const arm = (ms: number): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        record(current.k, 'hang', current.ops, `no answer in ${ms} ms`);
        finish(current.k + 1, false);
      }, ms);
    };
    const finish = (next: number, finished: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void w.terminate();
      resolve({ next, finished });
    };
    arm(120_000); // building the base input (loading h5wasm) is slower than a case
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'start') {
        current = { k: m.k, ops: m.ops };
        arm(timeoutMs);
      } else if (m.type === 'done') record(m.k, m.outcome, current.ops, m.detail);
      else if (m.type === 'end') finish(input.cases, true);
    });
    w.on('error', (e) => {
      record(current.k, 'crash', current.ops, `worker died: ${e.message.slice(0, 300)}`);
      finish(current.k + 1, false);
    });
    w.on('exit', () => {
      if (!settled) {
        record(current.k, 'crash', current.ops, 'worker exited');
        finish(current.k + 1, false);
      }
    });
  });
}

export async function runFuzz(o: FuzzOptions): Promise<TargetReport[]> {
  const reports: TargetReport[] = [];
  for (let t = 0; t < TARGETS.length; t++) {
    const name = TARGETS[t].name;
    if (o.only && !o.only.includes(name)) continue;
    const counts = Object.fromEntries(OUTCOMES.map((x) => [x, 0])) as Record<Outcome, number>;
    const bad: BadCase[] = [];
    let done = 0;
    const record = (k: number, outcome: Outcome, ops: string, detail?: string): void => {
      counts[outcome]++;
      done++;
      if (!ACCEPTED.has(outcome) && bad.length < 20) bad.push({ k, outcome, ops, detail });
      if (done % 500 === 0) o.onProgress?.(name, done, o.cases);
    };
    const t0 = performance.now();
    let from = 0;
    while (from < o.cases) {
      const r = await runWorker({ target: t, seed: o.seed, cases: o.cases, from }, o.caseTimeoutMs ?? 30_000, record);
      if (r.finished) break;
      from = r.next;
    }
    reports.push({ name, cases: done, counts, bad, seconds: (performance.now() - t0) / 1000 });
  }
  return reports;
}

/** The outcome table (markdown), one row per reader. */
export function formatTable(reports: readonly TargetReport[]): string {
  const head = `| reader | cases | ${OUTCOMES.join(' | ')} | seconds |`;
  const rule = `|---|---:|${OUTCOMES.map(() => '---:').join('|')}|---:|`;
  const rows = reports.map(
    (r) => `| ${r.name} | ${r.cases} | ${OUTCOMES.map((x) => r.counts[x]).join(' | ')} | ${r.seconds.toFixed(1)} |`,
  );
  return [head, rule, ...rows].join('\n');
}
