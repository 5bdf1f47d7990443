// Cost of the input checks (docs/robustness.md): wall and CPU time of reading a large .npy through the real reader,
// as `vsl eval` reads features (100 images per read), for a built vsl tree at --root (this one, or an older
// checkout). Run it on both trees, alternating, a few times each; the machine is shared, so CPU time says more.
//
//   node scripts/measure_io.mjs make --file /tmp/big.npy --images 5000      # 5000 x 36 x 2048 float32 = 1.47 GB
//   node scripts/measure_io.mjs read --file /tmp/big.npy --root .           # one JSON line: wall and CPU seconds
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const mode = process.argv[2];
const file = arg('file', '/tmp/vsl-big.npy');

if (mode === 'make') {
  const n = Number(arg('images', '5000'));
  const row = 36 * 2048;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, 36, 2048), }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  const header = Buffer.alloc(10 + dict.length + pad + 1, 0x20);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(header);
  header.writeUInt16LE(header.length - 10, 8);
  header.write(dict, 10, 'latin1');
  header[header.length - 1] = 0x0a;
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, header);
  const block = new Float32Array(100 * row);
  let s = 1;
  for (let i = 0; i < n; i += 100) {
    for (let k = 0; k < block.length; k++) block[k] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
    fs.writeSync(fd, new Uint8Array(block.buffer, 0, Math.min(100, n - i) * row * 4));
  }
  fs.closeSync(fd);
} else if (mode === 'read') {
  const root = path.resolve(arg('root', '.'));
  const candidates = ['dist/src/io/npyRead.js', 'dist/src/data/npy.js'].map((p) => path.join(root, p));
  const mod = await import(pathToFileURL(candidates.find((p) => fs.existsSync(p))).href);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const h = mod.openNpy(file);
  let sum = 0;
  const out = new Float32Array(100 * h.rowSize);
  for (let s = 0; s < h.nRows; s += 100) {
    const e = Math.min(h.nRows, s + 100);
    h.readRows(s, e, out);
    sum += out[0];
  }
  h.close();
  const c = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  const bytes = fs.statSync(file).size;
  console.log(
    JSON.stringify({ root, wall, cpu: (c.user + c.system) / 1e6, gbPerSecond: bytes / 1e9 / wall, check: sum }),
  );
} else {
  console.error('usage: measure_io.mjs make|read --file F [--images N] [--root DIR]');
  process.exitCode = 2;
}
