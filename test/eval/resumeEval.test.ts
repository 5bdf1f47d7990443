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
  type VslRun,
} from '../helpers/evalFixture.js';

const IMAGES = 60; // 12 blocks of 5 images x 300 captions
/** How long the interrupted run may take to write half of its blocks (it takes ~1 s; vslStart kills at 180 s). */
const HALF_DEADLINE_MS = 120_000;
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
  // Interrupt once half of the blocks are on disk. The wait also ends, failing with the child's stderr, if the
  // child exits first or if half is not reached by the deadline (a hang: the uninterrupted run takes seconds).
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + HALF_DEADLINE_MS;
    let settled = false;
    const fail = (why: string, r: VslRun) =>
      reject(
        new Error(
          `${why} (status ${r.status}, signal ${r.signal}; ${blockFiles(work).length} of ${total} blocks on disk); stderr:\n${r.stderr}`,
        ),
      );
    const poll = setInterval(() => {
      if (blockFiles(work).length >= total / 2) {
        settled = true;
        clearInterval(poll);
        run.child.kill(signal);
        resolve();
      } else if (Date.now() > deadline) {
        settled = true;
        clearInterval(poll);
        run.child.kill('SIGKILL');
        void run.done.then((r) =>
          fail(`half of the blocks not written within ${HALF_DEADLINE_MS / 1000} s: killed`, r),
        );
      }
    }, 5);
    void run.done.then((r) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      fail('vsl exited before half of the blocks were written', r);
    }, reject);
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
