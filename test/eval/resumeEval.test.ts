// Issue 13: an evaluation interrupted at about half (SIGINT in one run, SIGKILL in another) and run again with
// the same command reuses the blocks it kept, scores the rest, and gives the uninterrupted run's matrix bit for
// bit. The model is larger than the other eval tests' so that a block takes a noticeable time (~0.1-1 s).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setLogLevel } from '../../src/util/log.js';
import { selectBackend } from '../../src/ops/backend.js';
import { BlockStore } from '../../src/eval/blockStore.js';
import {
  errorLine,
  logLines,
  makeCheckpoint,
  makeEvalData,
  vslStart,
  vslSync,
  type EvalFixture,
} from '../helpers/evalFixture.js';

const IMAGES = 60; // 12 blocks of 5 images x 300 captions
let f: EvalFixture;
let model = '';
let reference: Buffer;
let full: Scored;
const at = (name: string) => path.join(f.dir, name);
const args = (sims: string) => ['eval', '--model', model, '--split', 'test', '--workers', '1', '--save-sims', sims];

interface Scored {
  seconds: number;
  cpu: number;
  scored: number;
  reused: number;
}
function scoredLine(stderr: string): Scored {
  const l = logLines(stderr).find((x) => typeof x.msg === 'string' && x.msg.startsWith('scored '));
  assert.ok(l, `no 'scored' log line in ${stderr}`);
  return {
    seconds: l.seconds as number,
    cpu: l.cpuSeconds as number,
    scored: l.scored as number,
    reused: l.reused as number,
  };
}

before(async () => {
  setLogLevel('warn');
  await selectBackend('wasm');
  f = makeEvalData('resume', IMAGES);
  model = await makeCheckpoint(f, 'M', { module: 'SGR', seed: 7, embedSize: 128, simDim: 32, wordDim: 32 });
  const r = vslSync(f.dir, args('ref.npy'), 'info');
  assert.equal(r.status, 0, r.stderr);
  reference = fs.readFileSync(at('ref.npy'));
  full = scoredLine(r.stderr);
});
after(() => fs.rmSync(f.dir, { recursive: true, force: true }));

const blockFiles = (dir: string) =>
  fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^rows-\d+-\d+\.npy$/.test(n)) : [];

async function interruptAtHalf(tag: string, signal: NodeJS.Signals): Promise<void> {
  const sims = `${tag}.npy`;
  const work = at(`${tag}.work`);
  const run = vslStart(f.dir, args(sims));
  const total = 12;
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (blockFiles(work).length >= total / 2) {
        clearInterval(poll);
        run.child.kill(signal);
        resolve();
      }
    }, 5);
  });
  const first = await run.done;
  const kept = blockFiles(work).length;
  if (signal === 'SIGINT') {
    assert.equal(first.status, 130, first.stderr);
    const line = errorLine(first.stderr) ?? '';
    assert.match(
      line,
      new RegExp(`^vsl: stopped by SIGINT: ${kept} of ${total} blocks are kept in ${tag}\\.work; continue with: vsl `),
    );
    assert.ok(line.includes(`--save-sims ${sims}`), line);
  } else {
    assert.equal(first.signal, 'SIGKILL');
  }
  assert.equal(fs.existsSync(at(sims)), false);
  assert.ok(kept >= 1 && kept < total, `kept ${kept} of ${total}`);

  const again = vslSync(f.dir, args(sims), 'info');
  assert.equal(again.status, 0, again.stderr);
  const reuse = logLines(again.stderr).find((l) => typeof l.msg === 'string' && l.msg.includes('blocks reused from'));
  assert.ok(reuse, again.stderr);
  assert.equal(reuse.reused, kept);
  assert.equal(reuse.toScore, total - kept);
  const s = scoredLine(again.stderr);
  assert.equal(s.scored, total - kept);
  assert.ok(
    fs.readFileSync(at(sims)).equals(reference),
    `${tag}: the resumed matrix differs from the uninterrupted one`,
  );
  assert.equal(fs.existsSync(work), false, 'the work directory is removed once the matrix is written');
  process.stderr.write(
    `${signal} at ${kept}/${total} blocks: the rerun reused ${kept} and scored ${s.scored} in ${s.seconds.toFixed(1)} s ` +
      `wall / ${s.cpu.toFixed(1)} s CPU (uninterrupted: ${total} blocks in ${full.seconds.toFixed(1)} s / ${full.cpu.toFixed(1)} s CPU; ` +
      `share ${(s.seconds / full.seconds).toFixed(2)} wall, ${(s.cpu / full.cpu).toFixed(2)} CPU)\n`,
  );
}

test('SIGINT at about half: exit 130 with the command to continue; the rerun scores the rest; same matrix', async () => {
  await interruptAtHalf('int', 'SIGINT');
});

test('SIGKILL at about half: the rerun reuses every block on disk; same matrix', async () => {
  await interruptAtHalf('kill', 'SIGKILL');
});

test('a work directory of another evaluation is refused naming the field; a damaged block is scored again', () => {
  const dir = at('store');
  const id = { 'model.sha256': 'a'.repeat(64), 'data.split': 'test', 'protocol.fold5': false };
  const s = BlockStore.open(dir, id, 4);
  const block = { rows: [5, 7] as [number, number], captions: [0, 4] as [number, number] };
  s.write(block, Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.deepEqual([...BlockStore.open(dir, id, 4).read(block)!], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.throws(
    () => BlockStore.open(dir, { ...id, 'data.split': 'dev' }, 4),
    (e: Error) =>
      e.message.startsWith(
        `${path.join(dir, 'manifest.json')}: data.split: expected "dev" (this evaluation), found "test"`,
      ),
  );
  const file = s.fileOf(block);
  fs.truncateSync(file, fs.statSync(file).size - 4);
  assert.equal(s.read(block), null);
  assert.equal(fs.existsSync(file), false);
  s.removeBlocks([block]);
  assert.equal(fs.existsSync(dir), false);
});
