// `vsl train`'s stderr progress: a bar only on a TTY outside CI (and not at log level silent); otherwise the
// plain log_step lines, word for word as before the bar existed. Fake streams stand in for stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stepLine, trainProgress, useProgressBar, type StepStatus } from '../../src/train/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { isTTY, columns: 120, writes, write: (s: string) => (writes.push(s), true) };
}

const status = (step: number, steps = 10): StepStatus => ({
  epoch: 2,
  step,
  steps,
  loss: 1.23456,
  lossAvg: 0.5,
  hinge: 1.2,
  semantic: 0.03456,
  lr: 0.0002,
  secondsPerStep: 0.456,
  etaSeconds: 6.8,
});

test('the bar is used only on a TTY, outside CI, below log level silent', () => {
  const tty = { isTTY: true };
  assert.equal(useProgressBar(tty, {}, 'info'), true);
  assert.equal(useProgressBar(tty, {}, 'warn'), true);
  assert.equal(useProgressBar(tty, { CI: 'true' }, 'info'), false);
  assert.equal(useProgressBar(tty, { CI: '1' }, 'info'), false);
  assert.equal(useProgressBar(tty, { CI: '' }, 'info'), true); // set but empty counts as unset (as vsl eval)
  assert.equal(useProgressBar(tty, {}, 'silent'), false);
  assert.equal(useProgressBar({ isTTY: false }, {}, 'info'), false);
  assert.equal(useProgressBar({}, {}, 'info'), false); // a pipe or file stream has no isTTY at all
});

test('the plain line is the one vsl train logged before the bar', () => {
  assert.equal(
    stepLine(status(4, 20)),
    'epoch 2 [5/20] loss 1.235 (avg 0.500) hinge 1.200 vsl 0.035 lr 2.0e-4 0.46 s/step, epoch ETA 7 s',
  );
});

for (const [name, isTTY, env] of [
  ['not a TTY', false, {}],
  ['a TTY under CI', true, { CI: 'true' }],
] as const) {
  test(`${name}: plain lines at log_steps only, nothing drawn on the stream`, () => {
    const stream = fakeStream(isTTY);
    const lines: string[] = [];
    const p = trainProgress({ stream, env, logLevel: 'info', line: (m) => lines.push(m) });
    assert.equal(p.bar, false);
    p.begin(2, 10, 0);
    for (let step = 0; step < 10; step++) p.step(status(step), (step + 1) % 4 === 0 || step === 9);
    p.stop();
    p.resume();
    p.stop();
    assert.deepEqual(lines, [stepLine(status(3)), stepLine(status(7)), stepLine(status(9))]);
    assert.deepEqual(stream.writes, []);
  });
}

test('a TTY: one bar with steps, mean loss and ETA; no plain lines while it is shown; stop ends its line', () => {
  const stream = fakeStream(true);
  const lines: string[] = [];
  const p = trainProgress({ stream, env: {}, logLevel: 'info', line: (m) => lines.push(m) });
  assert.equal(p.bar, true);
  try {
    p.begin(2, 10, 0);
    for (let step = 0; step < 3; step++) p.step(status(step), true);
    p.stop(); // a validation (or a signal) takes the bar down ...
    const drawn = stream.writes.join('');
    assert.deepEqual(lines, [], 'plain lines written while the bar was shown');
    assert.match(drawn, /epoch 2 \[[^\]]*\] 3\/10 \| loss avg 0\.500 \| ETA 7s/);
    assert.ok(drawn.endsWith('\n'), 'the stopped bar must leave the cursor on a fresh line for the next log line');
    const n = stream.writes.length;
    p.stop(); // idempotent
    assert.equal(stream.writes.length, n);

    p.step(status(3), true); // ... while it is down, log_steps are plain lines again
    assert.deepEqual(lines, [stepLine(status(3))]);

    p.resume(); // after a mid-epoch validation: redrawn where it was
    assert.match(stream.writes.slice(n).join(''), /4\/10/);
    p.step(status(9), true);
    p.stop();
    const after = stream.writes.length;
    p.resume(); // the epoch is done: nothing to redraw
    assert.equal(stream.writes.length, after);
    assert.match(stream.writes.join(''), /10\/10/);
    assert.equal(lines.length, 1);
  } finally {
    p.stop(); // the bar's redraw timer would otherwise keep this test process alive
  }
});
