// `npm run bench`: throughput of the SGR/SAF score matrix, the training step and split encoding on one backend.
// stdout: one JSON object per line, each with a "case" key (grep '"case"'); a summary table goes to stderr at the
// end. Every case reports GFLOP/s from the reference modules' matmul FLOP counts (figures.ts) beside the same run's plain matMul GFLOP/s (the
// roofline, and peak RSS. The comparison with the reference comes from the workbench's sidebyside.sh (both timed
// in one run on one machine), not from figures kept here.
//
//   node dist/src/bench/bench.js [--quick] [--backend wasm|cpu] [--engine tfjs|onnx] [--workers N] [--cases a,b]
//        [--measure-images N] [--chunk-mb MB]
// --engine onnx scores the score-* cases on ONNX Runtime (N worker threads with a 1-thread session each, or one
// 2-thread session in process for -w1 / --workers 1); the other cases run on tfjs. Every record names its engine.
//
// Each case runs in its own child process (a fresh wasm heap each; peak RSS is that case's), the parent collects
// the JSON lines. --cases takes case names or prefixes (score, train-sgr, encode, ...); matmul always runs (it is the roofline).
// The 1000 × 5000 cases score the first --measure-images images (default 20, rounded up to whole image blocks per
// worker) against all 5000 captions and extrapolate ("extrapolated_from" in the JSON); --quick does the same
// for its 100 × 500 blocks (10 images per worker).
import os from 'node:os';
import { spawn } from 'node:child_process';
import { selectBackend, type BackendChoice } from '../ops/backend.js';
import type { EngineName } from '../runtime/engine.js';
import { DEFAULT_CHUNK_MB } from '../ops/memoryGuard.js';
import { setLogLevel } from '../util/log.js';
import { moduleNames, moduleOf } from '../model/modules.js';
import { ALL_CASES, QUICK_CASES, type CaseName } from './figures.js';
import {
  encodeCaptionsCase,
  encodeImagesCase,
  matmulCase,
  memoryFields,
  scoreCase,
  trainCase,
  type BenchContext,
  type BenchRecord,
} from './cases.js';

interface Args {
  quick: boolean;
  backend: BackendChoice;
  /** engine of the score cases */
  engine: EngineName;
  workers: number;
  cases: CaseName[] | null;
  measureImages: number;
  /** internal: run this one case in this process (the parent runs every case in its own child process) */
  child: CaseName | null;
  /** internal: the parent's matMul GFLOP/s, handed to the children */
  roofline: number | null;
  /** training-step scoring chunk budget in MB (train's --chunk-mb) */
  chunkMb: number;
  /** print a per-stage breakdown of the timed step or block (--profile CASE) */
  profile: boolean;
}

const USAGE =
  'usage: bench [--quick] [--backend wasm|cpu] [--engine tfjs|onnx] [--workers N] [--cases a,b] [--measure-images N] [--chunk-mb MB]\n' +
  '       bench --profile CASE    (one training step or score block, stage by stage, forward and backward apart)\n' +
  `cases: ${ALL_CASES.join(', ')} (names or prefixes)\n`;

function parseArgs(argv: string[]): Args {
  const a: Args = {
    quick: false,
    backend: 'wasm',
    engine: 'tfjs',
    workers: 2,
    cases: null,
    measureImages: 20,
    child: null,
    roofline: null,
    chunkMb: DEFAULT_CHUNK_MB,
    profile: false,
  };
  const value = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag}: missing value\n${USAGE}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    switch (f) {
      case '--quick':
        a.quick = true;
        break;
      case '--backend':
        a.backend = value(i++, f) as BackendChoice;
        break;
      case '--engine': {
        const e = value(i++, f);
        if (e !== 'tfjs' && e !== 'onnx') throw new Error(`--engine: expected tfjs or onnx, found ${e}\n${USAGE}`);
        a.engine = e;
        break;
      }
      case '--workers': {
        const n = Number(value(i++, f));
        if (!Number.isInteger(n) || n < 1) throw new Error(`--workers: expected an integer >= 1, found ${argv[i]}`);
        a.workers = n;
        break;
      }
      case '--measure-images': {
        const n = Number(value(i++, f));
        if (!Number.isInteger(n) || n < 1)
          throw new Error(`--measure-images: expected an integer >= 1, found ${argv[i]}`);
        a.measureImages = n;
        break;
      }
      case '--cases': {
        const wanted = value(i++, f)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const picked = new Set<CaseName>();
        for (const w of wanted) {
          const hits = ALL_CASES.filter((c) => c === w || c.startsWith(w));
          if (!hits.length) throw new Error(`--cases: unknown case ${w}\n${USAGE}`);
          for (const h of hits) picked.add(h);
        }
        a.cases = ALL_CASES.filter((c) => picked.has(c));
        break;
      }
      case '--profile': {
        const c = value(i++, f) as CaseName;
        if (!ALL_CASES.includes(c) || c === 'matmul' || c.startsWith('encode'))
          throw new Error(`--profile: expected a training or score case, found ${c}\n${USAGE}`);
        a.cases = [c];
        a.profile = true;
        break;
      }
      case '--child': {
        const c = value(i++, f) as CaseName;
        if (!ALL_CASES.includes(c)) throw new Error(`--child: unknown case ${c}`);
        a.child = c;
        break;
      }
      case '--chunk-mb': {
        const n = Number(value(i++, f));
        if (!(n > 0)) throw new Error(`--chunk-mb: expected a positive number, found ${argv[i]}`);
        a.chunkMb = n;
        break;
      }
      case '--roofline':
        a.roofline = Number(value(i++, f));
        break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
      // falls through (unreachable)
      default:
        throw new Error(`unknown option ${f}\n${USAGE}`);
    }
  }
  return a;
}

function plan(a: Args): CaseName[] {
  let list: CaseName[] = a.cases ?? (a.quick ? QUICK_CASES : [...ALL_CASES]);
  if (a.quick) list = list.filter((c) => !c.endsWith('-1000x5000') && !c.endsWith('-b128'));
  if (!list.includes('matmul')) list = ['matmul', ...list];
  return list;
}

async function runCase(ctx: BenchContext, name: CaseName, a: Args): Promise<BenchRecord> {
  const m = /^score-(sgr|saf)-(\d+)x(\d+)(-w1)?$/.exec(name);
  if (m) {
    const module = m[1].toUpperCase();
    const nImg = Number(m[2]);
    const nCap = Number(m[3]);
    // a profile is taken on this thread: the in-process scorer (one thread), 10 images
    const workers = m[4] || a.profile ? 1 : a.workers;
    // Whole image blocks of 10 per worker, so the measured shards are balanced.
    const unit = 10 * workers;
    // --quick scores only the first 10 images per worker of the 100 × 500 block (to stay near a minute).
    const want = a.profile ? 10 : nImg >= 1000 ? a.measureImages : a.quick ? unit : nImg;
    const measure = Math.min(nImg, Math.ceil(want / unit) * unit);
    return scoreCase(ctx, name, { module, nImg, nCap, workers, measure });
  }
  const t = /^train-(sgr|saf)-b(\d+)$/.exec(name);
  if (t) {
    const B = Number(t[2]);
    // Steady steps, as the reference's harness times its own after a warm-up step: the first two steps here also
    // pay for the wasm compiler's tier-up, the heap's growth and Adam's first moments (~0.4 and ~0.15 s more at
    // batch 32). Two untimed steps, then the median of three (one at batch 128, a minute a step); --quick: one.
    return a.quick
      ? trainCase(ctx, name, t[1].toUpperCase(), B, 0, a.chunkMb, 1)
      : trainCase(ctx, name, t[1].toUpperCase(), B, 2, a.chunkMb, B <= 32 ? 3 : 1);
  }
  if (name === 'encode-images-1000') return encodeImagesCase(ctx, 1000);
  if (name === 'encode-captions-5000') return encodeCaptionsCase(ctx, 5000);
  // --quick: half the rows, no warm-up, one rep (the rate of a 2048 x 1024 right-hand side is the same).
  return a.quick ? matmulCase(ctx, 1, 0, 2304) : matmulCase(ctx, 2, 1, 4608);
}

function fmt(x: BenchRecord[string] | undefined, d = 1): string {
  return typeof x === 'number' ? x.toFixed(d) : x === null || x === undefined ? '-' : String(x);
}

function table(records: BenchRecord[], totalS: number, backend: string): string {
  const rows: string[][] = [['case', 'threads', 'measured', 'GFLOP/s', '% roof', 'peak RSS MB']];
  for (const r of records) {
    let measured = '-';
    if (typeof r.pairs_per_s === 'number') {
      measured = `${fmt(r.pairs_per_s, 0)} pairs/s (${fmt(r.seconds, 1)} s${r.extrapolated_from ? ', extrap. from ' + r.extrapolated_from : ''})`;
    } else if (typeof r.s_per_step === 'number') {
      measured = `${fmt(r.s_per_step, 2)} s/step`;
    } else if (typeof r.items_per_s === 'number') {
      measured = `${fmt(r.items_per_s, 0)} items/s (${fmt(r.seconds, 1)} s)`;
    } else if (r.case === 'matmul') {
      measured = `${fmt(r.seconds, 3)} s (${r.shape})`;
    } else if (r.error) {
      measured = `ERROR: ${String(r.error).slice(0, 60)}`;
    }
    rows.push([
      String(r.case),
      fmt(r.workers ?? r.threads ?? null, 0), // score workers, or a training step's threads
      measured,
      fmt(r.gflops, 2),
      fmt(r.pct_of_roofline, 1),
      fmt(r.peak_rss_mb, 0),
    ]);
  }
  const widths = rows[0].map((_, j) => Math.max(...rows.map((row) => row[j].length)));
  const line = (row: string[]) => row.map((cell, j) => cell.padEnd(widths[j])).join('  ');
  return [
    `bench on ${backend}: ${records.length} cases in ${totalS.toFixed(1)} s; 1-min load average now ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores` +
      ' (other processes sharing the cores slow every figure down)',
    line(rows[0]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
    `FLOP counts: the reference modules' matmuls (${moduleNames()
      .map((n) => `${n} ${moduleOf({ module: n }).pairMflop}`)
      .join(' / ')} MFLOP per pair at 12 tokens; training ≈ 3 x forward). ` +
      'Against the reference: REF_WORK=... bash ../shared/reference/workbench/sidebyside.sh (both in one run).',
  ].join('\n');
}

/** Run one case in a fresh child process (own wasm heap: a case that exhausts or aborts it cannot spoil the next). */
function runChild(name: CaseName, a: Args, roofline: number | null): Promise<BenchRecord> {
  const args = [process.argv[1], '--child', name, '--backend', String(a.backend), '--workers', String(a.workers)];
  args.push('--engine', a.engine);
  args.push('--measure-images', String(a.measureImages), '--chunk-mb', String(a.chunkMb));
  if (a.quick) args.push('--quick');
  if (a.profile && name !== 'matmul') args.push('--profile', name);
  if (roofline !== null) args.push('--roofline', String(roofline));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('close', (code, signal) => {
      const line = out
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      if (line) return resolve(JSON.parse(line) as BenchRecord);
      resolve({ case: name, error: `child process exited with ${signal ?? 'code ' + code} without a result` });
    });
  });
}

async function main(): Promise<void> {
  let a: Args;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  setLogLevel(process.env.VSL_LOG_LEVEL ?? 'warn');
  if (a.child) {
    const info = await selectBackend(a.backend);
    const ctx: BenchContext = {
      backend: info.name,
      engine: a.engine,
      workers: a.workers,
      rooflineGflops: a.roofline,
      measureImages: a.measureImages,
      progressEveryMs: 30_000,
      profile: a.profile,
    };
    let rec: BenchRecord;
    try {
      rec = await runCase(ctx, a.child, a);
    } catch (e) {
      rec = { case: a.child, backend: ctx.backend, error: (e as Error).message.split('\n')[0], ...memoryFields() };
      process.exitCode = 1;
    }
    // the engine that ran the case: the score cases take --engine, the others always run on tfjs
    rec = { case: rec.case, engine: a.child.startsWith('score-') ? a.engine : 'tfjs', ...rec };
    // what ran tfjs' matrix products (ops/gemm.ts): vsl's relaxed-SIMD kernel or XNNPACK
    if (info.products) rec = { ...rec, products: info.products };
    process.stdout.write(JSON.stringify(rec) + '\n');
    return;
  }
  const cases = plan(a);
  process.stderr.write(
    `[bench] backend ${a.backend}, score engine ${a.engine}, workers ${a.workers}${a.quick ? ', quick' : ''}: ${cases.join(', ')} (one child process per case)\n`,
  );
  const t0 = performance.now();
  const records: BenchRecord[] = [];
  let failed = 0;
  let roofline: number | null = null;
  let backend = String(a.backend);
  for (const name of cases) {
    const tc = performance.now();
    process.stderr.write(`[bench] ${name} ...\n`);
    const rec = await runChild(name, a, roofline);
    if (rec.error) failed++;
    if (name === 'matmul' && typeof rec.gflops === 'number') roofline = rec.gflops;
    if (typeof rec.backend === 'string') backend = rec.backend;
    rec.wall_s = Number(((performance.now() - tc) / 1000).toFixed(2));
    records.push(rec);
    process.stdout.write(JSON.stringify(rec) + '\n');
  }
  const totalS = (performance.now() - t0) / 1000;
  process.stdout.write(
    JSON.stringify({
      summary: true,
      backend,
      engine: a.engine,
      cases: records.length,
      failed,
      total_s: Number(totalS.toFixed(1)),
    }) + '\n',
  );
  process.stderr.write('\n' + table(records, totalS, backend) + '\n');
  if (failed) process.exitCode = 1;
}

await main();
