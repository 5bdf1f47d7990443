// Where the time of a step goes, stage by stage, forward and backward apart (`npm run bench -- --profile CASE`).
// The model marks its blocks with stage(name, fn); while profiling is on, the engine's tape nodes remember the
// stage they were recorded in, so a node's gradient is timed under that stage's "backward"; a stage entered
// inside a gradient (the chunked scorer's recomputation) is its "recompute". Times are wall-clock and
// exclusive (a nested stage's time is its own, not its parent's); the products (MatMul kernels) of each stage
// are counted, so that its achieved GFLOP/s shows. Off (the default) stage() is one branch and a call.
import * as tf from '@tensorflow/tfjs';

type Phase = 'forward' | 'backward' | 'recompute';

export interface StageTotals {
  stage: string;
  phase: Phase;
  ms: number;
  calls: number;
  /** FLOPs of the stage's 2-D and batched matrix products (2·b·m·n·k each) */
  flops: number;
  /** milliseconds spent inside those product kernels */
  matmulMs: number;
}

interface Frame {
  key: string;
  start: number;
  childMs: number;
}

interface EngineHooks {
  runKernelFunc: (p: {
    kernelName?: string;
    inputs?: Record<string, tf.TensorInfo>;
    attrs?: Record<string, unknown>;
  }) => unknown;
  addTapeNode: (
    kernelName: string,
    inputs: unknown,
    outputs: unknown,
    gradientsFunc: ((...a: unknown[]) => unknown) | null,
    saved: unknown,
    attrs: unknown,
  ) => void;
  state: { activeTape: { gradient?: (dys: unknown) => unknown }[] };
}

let on = false;
let phase: Phase = 'forward';
const stack: Frame[] = [];
const totals = new Map<string, StageTotals>();
let restore: (() => void) | null = null;

function keyOf(stage: string, p: Phase): string {
  return `${stage}\u0000${p}`;
}

function enter(stage: string, p: Phase): void {
  stack.push({ key: keyOf(stage, p), start: performance.now(), childMs: 0 });
  if (!totals.has(keyOf(stage, p)))
    totals.set(keyOf(stage, p), { stage, phase: p, ms: 0, calls: 0, flops: 0, matmulMs: 0 });
}

function leave(): void {
  const f = stack.pop()!;
  const elapsed = performance.now() - f.start;
  const t = totals.get(f.key)!;
  t.ms += elapsed - f.childMs;
  t.calls += 1;
  if (stack.length) stack[stack.length - 1].childMs += elapsed;
}

function current(): string {
  return stack.length ? totals.get(stack[stack.length - 1].key)!.stage : '(no stage)';
}

/** Run fn as stage `name` (a block of the model, a part of the step). */
export function stage<T>(name: string, fn: () => T): T {
  if (!on) return fn();
  enter(name, phase === 'forward' ? 'forward' : 'recompute');
  try {
    return fn();
  } finally {
    leave();
  }
}

/** FLOPs of a matMul kernel call: batched (b, m, k) @ (b, k, n), transposes included. */
function matmulFlops(inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown>): number {
  const a = inputs.a?.shape;
  const b = inputs.b?.shape;
  if (!a || !b) return 0;
  const m = attrs.transposeA ? a[a.length - 1] : a[a.length - 2];
  const k = attrs.transposeA ? a[a.length - 2] : a[a.length - 1];
  const n = attrs.transposeB ? b[b.length - 2] : b[b.length - 1];
  const batch = Math.max(
    a.slice(0, -2).reduce((x, y) => x * y, 1),
    b.slice(0, -2).reduce((x, y) => x * y, 1),
  );
  return 2 * batch * m * n * k;
}

/** Start collecting (clears what was collected). Patches the tfjs engine until stopProfiling(). */
export function startProfiling(): void {
  if (on) return;
  totals.clear();
  on = true;
  phase = 'forward';
  const engine = tf.engine() as unknown as EngineHooks;
  const run = engine.runKernelFunc;
  const add = engine.addTapeNode;
  engine.runKernelFunc = function (this: EngineHooks, p) {
    if (p.kernelName !== 'BatchMatMul' && p.kernelName !== '_FusedMatMul') return run.call(this, p);
    const t0 = performance.now();
    const out = run.call(this, p);
    const key = stack.length ? stack[stack.length - 1].key : keyOf('(no stage)', phase);
    if (!totals.has(key)) totals.set(key, { stage: '(no stage)', phase, ms: 0, calls: 0, flops: 0, matmulMs: 0 });
    const t = totals.get(key)!;
    t.flops += matmulFlops(p.inputs ?? {}, p.attrs ?? {});
    t.matmulMs += performance.now() - t0;
    return out;
  };
  engine.addTapeNode = function (this: EngineHooks, kernelName, inputs, outputs, gradientsFunc, saved, attrs) {
    add.call(this, kernelName, inputs, outputs, gradientsFunc, saved, attrs);
    const node = this.state.activeTape[this.state.activeTape.length - 1];
    const grad = node?.gradient;
    if (!grad) return;
    const recordedIn = current();
    node.gradient = (dys: unknown) => {
      const outer = phase;
      phase = 'backward';
      enter(recordedIn, 'backward');
      try {
        return grad(dys);
      } finally {
        leave();
        phase = outer;
      }
    };
  };
  restore = () => {
    engine.runKernelFunc = run;
    engine.addTapeNode = add;
  };
}

/** Stop collecting and return the totals, largest first. */
export function stopProfiling(): StageTotals[] {
  on = false;
  restore?.();
  restore = null;
  return [...totals.values()].sort((a, b) => b.ms - a.ms);
}

/**
 * A text table: per stage and phase its exclusive ms and share of `wallMs`, the GFLOP of its products, the
 * stage's GFLOP/s (products over all its time) and the products' own GFLOP/s, and the share of its time in them.
 */
export function formatProfile(rows: StageTotals[], wallMs: number, title: string): string {
  const head = ['stage', 'phase', 'ms', 'share', 'GFLOP', 'GFLOP/s', 'mm GF/s', 'in mm'];
  const w = [34, 9, 9, 6, 7, 8, 8, 6];
  const fmt = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' ');
  const rate = (flops: number, ms: number) => (ms > 0 ? flops / 1e9 / (ms / 1000) : 0).toFixed(1);
  const lines = [title, fmt(head)];
  for (const r of rows) {
    if (r.ms < 0.05 && r.flops === 0) continue;
    lines.push(
      fmt([
        r.stage,
        r.phase,
        r.ms.toFixed(1),
        `${((100 * r.ms) / wallMs).toFixed(1)}%`,
        (r.flops / 1e9).toFixed(2),
        rate(r.flops, r.ms),
        rate(r.flops, r.matmulMs),
        `${(r.ms > 0 ? (100 * r.matmulMs) / r.ms : 0).toFixed(0)}%`,
      ]),
    );
  }
  const ms = rows.reduce((a, r) => a + r.ms, 0);
  const flops = rows.reduce((a, r) => a + r.flops, 0);
  const mm = rows.reduce((a, r) => a + r.matmulMs, 0);
  lines.push(
    fmt([
      'outside any stage',
      '',
      (wallMs - ms).toFixed(1),
      `${((100 * (wallMs - ms)) / wallMs).toFixed(1)}%`,
      '',
      '',
      '',
      '',
    ]),
  );
  lines.push(
    fmt([
      'whole step',
      '',
      wallMs.toFixed(1),
      '100%',
      (flops / 1e9).toFixed(2),
      rate(flops, wallMs),
      rate(flops, mm),
      `${((100 * mm) / wallMs).toFixed(0)}%`,
    ]),
  );
  return lines.join('\n');
}

/**
 * A named block of the model: timed as stage `name`, and its intermediates freed when it returns (tf.tidy: the
 * tape keeps its own references to what the gradient needs), so that a forward pass holds the blocks' outputs
 * and saved tensors only, not every intermediate until the whole forward pass ends.
 */
export function block<T>(name: string, fn: () => T): T {
  return stage(name, () => tf.tidy(fn as () => tf.TensorContainer) as T);
}
