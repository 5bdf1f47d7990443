// Pairs per second of the ONNX score graph on a random-weight model at default dims (D 1024, S 256, img 2048),
// on random unit-norm encodings: N images x M captions of 8-18 tokens, drawn (seeded) from the lengths the tfjs
// bench and the reference workbench use (src/bench/figures.ts CAPTION_LENGTH_COUNTS, mean 13.5), or all of one
// length (--length L); one configuration per run, one JSON line. `npm run bench -- --engine onnx` times the
// configuration evaluation uses; this one tries the others (blocks, threads, padding) when tuning it.
//
//   node dist/src/runtime/onnx/bench.js --module SGR|SAF [--workers 0|N] [--threads T] [--images 100]
//        [--captions 500] [--image-block 1] [--caption-block 500] [--padded] [--length L]
// --workers 0: one session in this thread with T intra-op threads; N: N worker threads, each a T-thread session.
import os from 'node:os';
import { defaultModelConfig, REGIONS } from '../../model/config.js';
import { ParamRegistry } from '../../model/params.js';
import { Rng } from '../../util/rng.js';
import { exportGraphs } from './graphs.js';
import type { EncodedCaptions, EncodedImages } from '../encode.js';
import { OnnxModel } from './runner.js';
import { OnnxScorePool } from './scorePool.js';

interface Args {
  module: string;
  workers: number;
  threads: number;
  images: number;
  captions: number;
  imageBlock: number;
  captionBlock: number;
  padded: boolean;
  /** 0: the workbench's distribution of lengths */
  length: number;
}

/** Caption token counts of the reference workbench's synthetic data (a copy of src/bench/figures.ts's table). */
const LENGTH_COUNTS: [number, number][] = [
  [8, 11],
  [9, 56],
  [10, 106],
  [11, 132],
  [12, 181],
  [13, 246],
  [14, 302],
  [15, 252],
  [16, 233],
  [17, 99],
  [18, 22],
];

function parseArgs(argv: string[]): Args {
  const a: Args = {
    module: 'SGR',
    workers: 0,
    threads: 2,
    images: 100,
    captions: 500,
    imageBlock: 1,
    captionBlock: 500,
    padded: false,
    length: 0,
  };
  const num = (k: keyof Args, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${k}: expected an integer >= 0, found ${v}`);
    (a as unknown as Record<string, number>)[k] = n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const key = f.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (f === '--padded') a.padded = true;
    else if (f === '--module') a.module = argv[++i];
    else if (key in a) num(key as keyof Args, argv[++i]);
    else throw new Error(`unknown argument ${f}`);
  }
  return a;
}

/** Rows of unit length, uniform directions. */
function unitRows(n: number, D: number, rng: Rng): Float32Array {
  const a = new Float32Array(new SharedArrayBuffer(n * D * 4));
  rng.fillUniform(a, -1, 1);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += a[r * D + j] ** 2;
    const k = 1 / Math.sqrt(s);
    for (let j = 0; j < D; j++) a[r * D + j] *= k;
  }
  return a;
}

export function randomEncodings(a: Args, D: number, seed: number): { img: EncodedImages; cap: EncodedCaptions } {
  const rng = new Rng(seed);
  const img = { n: a.images, regions: unitRows(a.images * REGIONS, D, rng), vGlobal: unitRows(a.images, D, rng) };
  const total = LENGTH_COUNTS.reduce((n, [, c]) => n + c, 0);
  const draw = () => {
    let u = rng.float() * total;
    for (const [L, c] of LENGTH_COUNTS) if ((u -= c) < 0) return L;
    return 18;
  };
  const lengths = Int32Array.from({ length: a.captions }, () => a.length || draw());
  const offsets = new Int32Array(a.captions + 1);
  for (let i = 0; i < a.captions; i++) offsets[i + 1] = offsets[i] + lengths[i];
  const words = unitRows(offsets[a.captions], D, rng);
  return { img, cap: { n: a.captions, lengths, offsets, words, tGlobal: unitRows(a.captions, D, rng) } };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const config = defaultModelConfig({ module: a.module, vocabSize: 100 });
  const reg = ParamRegistry.init(config, 1);
  const t0 = performance.now();
  const graphs = exportGraphs(reg, config);
  const exportMs = performance.now() - t0;
  reg.dispose();
  const { img, cap } = randomEncodings(a, config.embedSize, 2);
  const o = { imageBlock: a.imageBlock, captionBlock: a.captionBlock, bucketByLength: !a.padded };
  let seconds: number;
  let warm: number;
  let cpu0: NodeJS.CpuUsage;
  if (a.workers === 0) {
    const model = await OnnxModel.fromGraphs(graphs, { only: ['score'], intraOpThreads: a.threads });
    const w0 = performance.now();
    await model.scoreMatrix(img, cap, { ...o, imageRange: [0, 1] }); // warm-up: one image
    warm = (performance.now() - w0) / 1000;
    cpu0 = process.cpuUsage();
    const t1 = performance.now();
    await model.scoreMatrix(img, cap, o);
    seconds = (performance.now() - t1) / 1000;
    await model.release();
  } else {
    const pool = await OnnxScorePool.start({
      workers: a.workers,
      threadsPerWorker: a.threads,
      graph: graphs,
      img,
      cap,
      ...o,
    });
    const w0 = performance.now();
    await pool.score([0, a.workers], [0, a.captions]); // warm-up: one image per worker
    warm = (performance.now() - w0) / 1000;
    cpu0 = process.cpuUsage();
    const t1 = performance.now();
    await pool.score([0, a.images], [0, a.captions]);
    seconds = (performance.now() - t1) / 1000;
    await pool.close();
  }
  const cpu = process.cpuUsage(cpu0!);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6; // this process and its worker threads, the timed part
  const pairs = a.images * a.captions;
  const meanLength = cap.offsets[cap.n] / cap.n;
  console.log(
    JSON.stringify({
      case: `onnx-score-${a.module}`,
      ...a,
      export_ms: Math.round(exportMs),
      warmup_s: Number(warm.toFixed(3)),
      seconds: Number(seconds.toFixed(3)),
      pairs_per_s: Math.round(pairs / seconds),
      pairs_per_cpu_s: Math.round(pairs / cpuSeconds),
      mean_length: Number(meanLength.toFixed(2)),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      loadavg_1m: Number(os.loadavg()[0].toFixed(2)),
    }),
  );
}

await main();
