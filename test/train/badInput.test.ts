// `vsl train` on bad input, through the real binary: each case prints one `vsl: ...` line that names the
// file or field at fault and exits non-zero, before any training.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DATA_NAME, TINY_MODEL, errorLine, makeData, rmrf, runVsl, tempDir } from './trainHelpers.js';

let tmp = '';
let dataPath = '';

before(() => {
  tmp = tempDir('bad');
  dataPath = makeData(tmp, 6, 3);
});
after(() => rmrf(tmp));

function baseArgs(over: { dataPath?: string; modelName?: string } = {}): string[] {
  return [
    'train',
    '--data-path',
    over.dataPath ?? dataPath,
    '--data-name',
    DATA_NAME,
    '--model-name',
    over.modelName ?? path.join(tmp, 'run'),
    ...TINY_MODEL,
    '--batch-size',
    '10',
    '--num-epochs',
    '1',
    '--backend',
    'cpu',
  ];
}

async function expectError(args: string[], parts: string[]): Promise<string> {
  const r = await runVsl(args, 30_000);
  assert.notEqual(r.code, 0, `expected a non-zero exit, got ${r.code}; stdout: ${r.stdout}; stderr: ${r.stderr}`);
  assert.equal(r.signal, null);
  const line = errorLine(r.stderr);
  assert.ok(line, `no "vsl: ..." line in stderr: ${r.stderr}`);
  for (const p of parts) assert.ok(line.includes(p), `${JSON.stringify(line)} lacks ${JSON.stringify(p)}`);
  // one clear line, not a stack trace
  assert.ok(!/^\s+at /m.test(r.stderr), `stderr has a stack trace: ${r.stderr}`);
  return line;
}

test('missing split file: names the missing file', async () => {
  const broken = path.join(tmp, 'nodev');
  fs.mkdirSync(path.join(broken, DATA_NAME), { recursive: true });
  for (const f of ['train_ims.npy', 'train_caps.txt', 'dev_ims.npy']) {
    fs.copyFileSync(path.join(dataPath, DATA_NAME, f), path.join(broken, DATA_NAME, f));
  }
  fs.copyFileSync(path.join(dataPath, `${DATA_NAME}_vocab.json`), path.join(broken, `${DATA_NAME}_vocab.json`));
  await expectError(baseArgs({ dataPath: broken }), [path.join(broken, DATA_NAME, 'dev_caps.txt'), 'not found']);
});

test('missing data directory: names it', async () => {
  const nowhere = path.join(tmp, 'no-such-data');
  await expectError(baseArgs({ dataPath: nowhere }), [nowhere]);
});

test('vocabulary without <unk>: names the file and the token', async () => {
  const vdir = path.join(tmp, 'badvocab');
  fs.mkdirSync(vdir, { recursive: true });
  const file = path.join(vdir, `${DATA_NAME}_vocab.json`);
  const word2idx = { '<pad>': 0, '<start>': 1, '<end>': 2, dog: 3, cat: 4 };
  fs.writeFileSync(file, JSON.stringify({ word2idx, idx: 5 }));
  await expectError([...baseArgs(), '--vocab-path', vdir], [file, '<unk>']);
});

test('features whose dim differs from --img-dim: names the file and img_dim', async () => {
  const args = baseArgs().map((a, i, xs) => (xs[i - 1] === '--img-dim' ? '48' : a));
  const line = await expectError(args, [path.join(dataPath, DATA_NAME, 'train_ims.npy'), 'img_dim', '48', '32']);
  assert.match(line, /expected 48/);
});

test('config file with an unknown key: names the file and the key', async () => {
  const cfg = path.join(tmp, 'bad_config.json');
  fs.writeFileSync(cfg, JSON.stringify({ batchSize: 10, learningRat: 0.001 }));
  await expectError([...baseArgs(), '--config', cfg], [cfg, "'learningRat'"]);
});

test('config value of the wrong type: names the field', async () => {
  const cfg = path.join(tmp, 'bad_type.json');
  fs.writeFileSync(cfg, JSON.stringify({ margin: 'big' })); // (not a key that a flag of baseArgs overrides)
  await expectError([...baseArgs(), '--config', cfg], [cfg, 'margin']);
});

test('unwritable run directory (its parent is a regular file): names the directory', async () => {
  const file = path.join(tmp, 'a-regular-file');
  fs.writeFileSync(file, 'not a directory');
  const runDir = path.join(file, 'run');
  await expectError(baseArgs({ modelName: runDir }), [runDir, 'not writable']);
});

// (before the fix in src/train/loop.ts this hung forever in Node's recursive mkdirSync)
test('unwritable run directory under /proc: names the directory', async () => {
  const runDir = '/proc/vsl-run';
  await expectError(baseArgs({ modelName: runDir }), [runDir, 'not writable']);
});
