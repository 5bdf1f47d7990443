// The server's parts without a model: the query queue (one at a time, in order, bounded, a waiting query dropped
// when its client leaves, drained on close) and the picture map (the names file checked against the split, names
// that leave the folder refused, both options or neither).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobQueue, QueueAborted, QueueFull } from '../../src/serve/queue.js';
import { openPictures } from '../../src/serve/pictures.js';
import { setLogLevel } from '../../src/util/log.js';
import { VslError } from '../../src/util/errors.js';

let tmp = '';
before(() => {
  setLogLevel('silent');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-serve-parts-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tick = () => new Promise((r) => setTimeout(r, 5));

test('the queue: one job at a time in arrival order, at most maxWaiting waiting, the left ones dropped', async () => {
  const q = new JobQueue(2);
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const job = (name: string, wait?: Promise<void>) => async () => {
    log.push(`start ${name}`);
    await wait;
    log.push(`end ${name}`);
    return name;
  };
  const a = q.run(job('a', gate));
  const left = new AbortController();
  const b = q.run(job('b'), left.signal);
  const c = q.run(job('c'));
  await assert.rejects(q.run(job('d')), QueueFull);
  assert.equal(q.waiting, 2);
  left.abort();
  await assert.rejects(b, QueueAborted);
  assert.equal(q.waiting, 1);
  const gone = new AbortController();
  gone.abort();
  await assert.rejects(q.run(job('e'), gone.signal), QueueAborted);
  await tick();
  assert.deepEqual(log, ['start a']);
  release();
  assert.deepEqual(await Promise.all([a, c]), ['a', 'c']);
  assert.deepEqual(log, ['start a', 'end a', 'start c', 'end c']);
  // a failing job does not stop the line; drain turns the waiting away
  const fail = q.run(() => Promise.reject(new Error('boom')));
  const waiting = q.run(job('f'));
  q.drain(new QueueFull('closing'));
  await assert.rejects(fail, /boom/);
  await assert.rejects(waiting, /closing/);
  assert.equal(await q.run(job('g')), 'g');
});

test('pictures: the names file must fit the split; names outside the folder are not served', () => {
  const dir = path.join(tmp, 'pics');
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a.jpg'), 'x');
  fs.writeFileSync(path.join(dir, 'sub', 'b.PNG'), 'xy');
  fs.writeFileSync(path.join(dir, 'c.svg'), '<svg/>');
  fs.writeFileSync(path.join(tmp, 'out.jpg'), 'x');
  fs.symlinkSync(path.join(tmp, 'out.jpg'), path.join(dir, 'link.jpg'));
  fs.symlinkSync(tmp, path.join(dir, 'up'));
  const names = ['a.jpg', 'sub/b.PNG', 'c.svg', '../out.jpg', 'link.jpg', 'up/out.jpg', '', 'sub/../a.jpg', 'nope.jpg'];
  const file = path.join(tmp, 'names.txt');
  fs.writeFileSync(file, names.join('\r\n') + '\r\n');
  const p = openPictures(dir, file, names.length);
  const served = names.map((_, r) => p.file(r));
  assert.deepEqual(
    served.map((s) => s && [path.basename(s.file), s.type, s.size]),
    [
      ['a.jpg', 'image/jpeg', 1],
      ['b.PNG', 'image/png', 2],
      null,
      null,
      null,
      null,
      null,
      ['a.jpg', 'image/jpeg', 1],
      null,
    ],
  );
  assert.equal(p.url(0), '/images/0');
  assert.equal(p.url(2), null);
  assert.equal(p.url(99), null);
  assert.equal(p.count, 3);
  // a file replaced by a link after the start is refused at the request
  fs.rmSync(path.join(dir, 'a.jpg'));
  fs.symlinkSync(path.join(tmp, 'out.jpg'), path.join(dir, 'a.jpg'));
  assert.equal(p.file(0), null);
  assert.throws(
    () => openPictures(dir, file, 5),
    (e: unknown) => {
      assert.ok(e instanceof VslError);
      assert.equal(
        e.message,
        `${file}: lines: expected 5 picture names, one per image row of the split, found ${names.length} lines`,
      );
      return true;
    },
  );
  assert.throws(() => openPictures(dir, undefined, 5), /--images and --image-names go together/);
  assert.throws(() => openPictures(path.join(tmp, 'absent'), file, 9), /absent: file not found/);
  assert.equal(openPictures(undefined, undefined, 5).url(0), null);
});
