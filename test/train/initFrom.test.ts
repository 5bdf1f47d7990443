// vsl train --init-from: the same weights in a torch zip, a legacy torch file and vsl's .h5 (vsl convert) give
// identical first-epoch losses; a file that does not fit the command line's model stops the run before training
// with one line naming the first offending key, both shapes and the options that differ.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  DATA_NAME,
  errorLine,
  makeData,
  readSteps,
  REF_FIXTURES,
  rmrf,
  runVsl,
  tempDir,
  trainRun,
} from './trainHelpers.js';

let tmp = '';
let dataPath = '';
const zip = path.join(REF_FIXTURES, 'sgr_init.pth.tar');
const legacy = path.join(REF_FIXTURES, 'sgr_init.legacy.pth.tar');

before(() => {
  tmp = tempDir('initfrom');
  dataPath = makeData(tmp, 8, 10); // the data the fixtures were made for (vocabulary of 75 words)
});
after(() => rmrf(tmp));

/** The fixtures' model (SGR, img 32, word 8, embed 16, sim 8, 3 steps, bi-GRU) unless `dims` says otherwise. */
function args(run: string, dims: Record<string, string> = {}, data = dataPath): string[] {
  const d = { imgDim: '32', wordDim: '8', embedSize: '16', simDim: '8', module: 'SGR', sgrStep: '3', ...dims };
  return [
    ...trainRun(data, run),
    '--img-dim',
    d.imgDim,
    '--word-dim',
    d.wordDim,
    '--embed-size',
    d.embedSize,
    '--sim-dim',
    d.simDim,
    '--module',
    d.module,
    '--sgr-step',
    d.sgrStep,
    '--batch-size',
    '10',
    '--num-epochs',
    '1',
    '--log-step',
    '1',
    '--seed',
    '7',
    '--backend',
    'cpu',
    '--workers',
    '1',
  ];
}

test('the same weights as a torch zip, a legacy torch file and a converted .h5: identical first-epoch losses', async () => {
  const h5 = path.join(tmp, 'sgr_init.h5');
  const c = await runVsl(['convert', zip, '-o', h5]);
  assert.equal(c.code, 0, c.stderr);
  const runs = { zip, legacy, h5 };
  const results = await Promise.all(
    Object.entries(runs).map(([name, file]) => runVsl([...args(path.join(tmp, name)), '--init-from', file])),
  );
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const steps = Object.keys(runs).map((name) => readSteps(path.join(tmp, name, 'train.log')));
  assert.equal(steps[0].length, 4); // 40 captions, batch 10, dropout 0.4 with the seed's masks
  assert.deepEqual(
    steps[0].map((s) => [s.epoch, s.iteration]),
    [
      [0, 1],
      [0, 2],
      [0, 3],
      [0, 4],
    ],
  );
  const values = (ss: (typeof steps)[number]) => ss.map((s) => [s.loss, s.hinge, s.semantic, s.gradNorm]);
  assert.deepEqual(values(steps[1]), values(steps[0]));
  assert.deepEqual(values(steps[2]), values(steps[0]));
  // train.log names the file and every key it took
  const init = fs
    .readFileSync(path.join(tmp, 'legacy', 'train.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"init-from"'))
    .map((l) => JSON.parse(l) as { file: string; format: string; keys: string[] });
  assert.equal(init.length, 1);
  assert.equal(init[0].file, legacy);
  assert.equal(init[0].format, 'torch-legacy');
  assert.equal(init[0].keys.length, 57);
  assert.ok(init[0].keys.includes('sim_enc.v_global_w.embedding_local.1.running_mean'));
});

async function expectError(argv: string[], parts: string[]): Promise<void> {
  const r = await runVsl(argv, 60_000);
  assert.notEqual(r.code, 0, `expected a non-zero exit; stderr: ${r.stderr}`);
  const line = errorLine(r.stderr);
  assert.ok(line, `no "vsl: ..." line in stderr: ${r.stderr}`);
  for (const p of parts) assert.ok(line.includes(p), `${JSON.stringify(line)} lacks ${JSON.stringify(p)}`);
  assert.ok(!/^\s+at /m.test(r.stderr), `stderr has a stack trace: ${r.stderr}`);
}

const cases: [string, Record<string, string>, string[]][] = [
  [
    'another module',
    { module: 'SAF' },
    [
      'sim_enc.SAF_module.attn_sim_w.weight',
      'expected shape [1, 8]',
      'found no such key',
      '--module SGR (this run: SAF)',
    ],
  ],
  [
    'another dimension',
    { embedSize: '32' },
    ['img_enc.fc.weight', 'expected shape [32, 32]', 'found [16, 32]', '--embed-size 16 (this run: 32)'],
  ],
  [
    'fewer reasoning steps',
    { sgrStep: '1' },
    [
      'sim_enc.SGR_module.1.graph_query_w.weight',
      "expected no such key in this run's model",
      'found an array of shape [8, 8]',
      '--sgr-step 3 (this run: 1)',
    ],
  ],
];
for (const [what, dims, parts] of cases) {
  test(`--init-from a model of ${what}: the first offending key with both shapes`, async () => {
    await expectError([...args(path.join(tmp, 'bad'), dims), '--init-from', zip], [zip, ...parts]);
  });
}

test('--init-from with another vocabulary: the embedding key, both shapes, both vocabulary sizes', async () => {
  const other = makeData(tempDir('initfrom-vocab'), 8, 3); // 59 words
  try {
    await expectError(
      [...args(path.join(tmp, 'bad'), {}, other), '--init-from', zip],
      [
        zip,
        'txt_enc.embed.weight',
        'expected shape [59, 8]',
        'found [75, 8]',
        `a vocabulary of 75 words (this run: 59 in ${path.join(other, `${DATA_NAME}_vocab.json`)})`,
      ],
    );
  } finally {
    rmrf(path.dirname(other));
  }
});

test('--resume a reference checkpoint that does not fit: the same message', async () => {
  const ck = path.join(REF_FIXTURES, 'sgr_checkpoint_1.pth.tar');
  await expectError(
    [...args(path.join(tmp, 'bad'), { wordDim: '16' }), '--resume', ck],
    [ck, 'txt_enc.embed.weight', 'expected shape [75, 16]', 'found [75, 8]', '--word-dim 8 (this run: 16)'],
  );
});

test('--init-from and --resume together, or a file that is not there: one clear line', async () => {
  await expectError(
    [...args(path.join(tmp, 'bad')), '--init-from', zip, '--resume', legacy],
    ['--init-from', '--resume', 'expected one of them'],
  );
  const missing = path.join(tmp, 'nope.pth.tar');
  await expectError([...args(path.join(tmp, 'bad')), '--init-from', missing], [missing, 'not found']);
});
