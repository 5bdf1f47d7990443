// `npm run fuzz`: every reader on 10,000 seeded mutations of a valid input (--cases N, --seed S, --only NAME).
// Prints the outcome table; exits 1 if any case ended in anything but success with unchanged output or a clean
// VslError (one printable line naming the file).
import { ACCEPTED, formatTable, runFuzz } from './runner.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const cases = Number(arg('cases', '10000'));
const seed = Number(arg('seed', '12'));
const only = process.argv.includes('--only') ? [arg('only', '')] : undefined;
const reports = await runFuzz({
  cases,
  seed,
  only,
  onProgress: (name, done, total) => process.stderr.write(`fuzz: ${name}: ${done}/${total}\n`),
});
process.stdout.write(`fuzz: ${cases} cases per reader, seed ${seed}\n\n${formatTable(reports)}\n`);
let failed = 0;
for (const r of reports)
  for (const b of r.bad) {
    failed++;
    process.stdout.write(`\n${r.name} case ${b.k} (${b.outcome}): ${b.ops}\n  ${b.detail ?? ''}\n`);
  }
const bad = reports.reduce(
  (s, r) =>
    s +
    Object.entries(r.counts)
      .filter(([k]) => !ACCEPTED.has(k as never))
      .reduce((a, [, v]) => a + v, 0),
  0,
);
process.stdout.write(
  `\n${bad === 0 ? 'fuzz: passed' : `fuzz: FAILED, ${bad} bad outcomes (first ${failed} listed)`}\n`,
);
process.exitCode = bad === 0 ? 0 : 1;
