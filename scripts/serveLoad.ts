// A bounded load on a running `vsl serve`, on this machine only: C queries in flight at a time, N in all, T seconds
// at most, then the latency percentiles and the error count. Loopback addresses only (127.0.0.0/8, ::1,
// localhost): it refuses any other.
//   node dist/scripts/serveLoad.js http://127.0.0.1:8080/ [--concurrency 4] [--requests 200] [--max-seconds 60]
//        [--k 10] [--image-every 0] [--json]
// --image-every M: every M-th request is an image query (/api/image/I) instead of a text search.
import { request } from '../test/helpers/httpClient.js';

const args = process.argv.slice(2);
const base = args.find((a) => !a.startsWith('--'));
const opt = (name: string, d: number): number => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return d;
  const v = Number(args[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name}: expected a whole number, found ${args[i + 1]}`);
  return v;
};
if (!base) throw new Error('usage: serveLoad.js URL [--concurrency C] [--requests N] [--max-seconds T] [--k K]');
const url = new URL(base);
if (!/^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(url.hostname))
  throw new Error(`${base}: only a server on this machine (127.0.0.0/8, [::1], localhost) is loaded`);
const concurrency = Math.max(1, Math.min(opt('concurrency', 4), 16));
const total = Math.min(opt('requests', 200), 10_000);
const maxSeconds = Math.min(opt('max-seconds', 60), 600);
const k = opt('k', 10);
const imageEvery = opt('image-every', 0);

const info = (await request(base, '/api/info')).json as { nImages: number; data: { dataName: string; split: string } };
// the queries: the split's own captions (from a few image queries), so that every word is a real one
const texts: string[] = [];
for (let i = 0; texts.length < 50 && i < Math.min(info.nImages, 10); i++) {
  const r = (await request(base, `/api/image/${i}?k=5`)).json as { captions?: { text: string }[] };
  for (const c of r.captions ?? []) texts.push(c.text);
}
if (texts.length === 0) texts.push('a dog on a bench', 'a red car near a tree', 'two people on a boat');

const latencies: number[] = [];
const errors = new Map<string, number>();
let sent = 0;
const t0 = performance.now();
const deadline = t0 + maxSeconds * 1000;

async function worker(): Promise<void> {
  while (sent < total && performance.now() < deadline) {
    const n = sent++;
    const path =
      imageEvery > 0 && n % imageEvery === imageEvery - 1
        ? `/api/image/${n % info.nImages}?k=${k}`
        : `/api/search?text=${encodeURIComponent(texts[n % texts.length])}&k=${k}`;
    const t = performance.now();
    try {
      const r = await request(base!, path);
      if (r.status === 200) latencies.push(performance.now() - t);
      else errors.set(`HTTP ${r.status}`, (errors.get(`HTTP ${r.status}`) ?? 0) + 1);
    } catch (e) {
      const key = (e as NodeJS.ErrnoException).code ?? 'network';
      errors.set(key, (errors.get(key) ?? 0) + 1);
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN;
const result = {
  server: base,
  data: `${info.data.dataName}/${info.data.split}`,
  images: info.nImages,
  concurrency,
  sent,
  ok: latencies.length,
  errors: Object.fromEntries(errors),
  errorCount: sent - latencies.length,
  seconds: Number(seconds.toFixed(2)),
  perSecond: Number((latencies.length / seconds).toFixed(2)),
  ms: { p50: Math.round(pct(0.5)), p95: Math.round(pct(0.95)), max: Math.round(latencies.at(-1) ?? NaN) },
};
process.stdout.write(
  args.includes('--json')
    ? JSON.stringify(result) + '\n'
    : `${result.sent} requests (${concurrency} at a time) to ${base} (${result.data}, ${result.images} images) in ${result.seconds} s: ` +
        `p50 ${result.ms.p50} ms, p95 ${result.ms.p95} ms, max ${result.ms.max} ms, ${result.perSecond}/s, ` +
        `${result.errorCount} errors${result.errorCount ? ` ${JSON.stringify(result.errors)}` : ''}\n`,
);
