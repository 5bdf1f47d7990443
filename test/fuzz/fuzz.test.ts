// A seeded subset of `npm run fuzz`: 300 mutations per reader, every one must end in success with unchanged
// output or a clean VslError (the full run, 10,000 per reader, is `npm run fuzz`; its table is in
// docs/robustness.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCEPTED, formatTable, runFuzz } from './runner.js';
import { TARGETS } from './targets.js';

test('fuzz (300 seeded mutations per reader): only unchanged successes and clean errors', async () => {
  const reports = await runFuzz({ cases: 300, seed: 20261201 });
  assert.equal(reports.length, TARGETS.length);
  const bad = reports.flatMap((r) => r.bad.map((b) => `${r.name} case ${b.k} ${b.outcome}: ${b.ops}: ${b.detail}`));
  assert.deepEqual(bad, [], formatTable(reports));
  for (const r of reports) {
    assert.equal(r.cases, 300, r.name);
    for (const [k, v] of Object.entries(r.counts)) if (!ACCEPTED.has(k as never)) assert.equal(v, 0, `${r.name} ${k}`);
    assert.ok(r.counts['clean-error'] > 0, `${r.name}: the mutations reach the checks`);
  }
});
