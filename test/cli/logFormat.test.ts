// What a person at a terminal sees on stderr: pretty log lines (no JSON), JSON lines when stderr is not a
// terminal, and --log-format to choose. The terminal is a real pseudo-terminal (util-linux `script`), running
// a short `vsl train` (progress bar, validation lines) and `vsl eval` on tiny synthetic data.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { defaultLogFormat, fieldsText } from '../../src/util/log.js';
import { isInteractive } from '../../src/util/terminal.js';
import { BIN, makeData, rmrf, tempDir, TINY_MODEL, trainRun } from '../train/trainHelpers.js';

const SCRIPT = '/usr/bin/script';
const noPty = fs.existsSync(SCRIPT) ? false : `skipped: no ${SCRIPT} (util-linux) to make a pseudo-terminal`;
let tmp = '';
let dataPath = '';

before(() => {
  tmp = tempDir('logfmt');
  dataPath = makeData(tmp, 10, 4);
});
after(() => rmrf(tmp));

/** The environment of a person's shell: no CI, no inherited format choice. */
function userEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CI;
  delete env.VSL_LOG_FORMAT;
  return env;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Run a shell command line inside a pseudo-terminal; returns the whole screen transcript. */
function inTerminal(cmd: string): { status: number | null; screen: string } {
  const r = spawnSync(SCRIPT, ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', env: userEnv(), timeout: 120_000 });
  return { status: r.status, screen: r.stdout };
}

/** Screen lines without colours, each \r-redraw of the progress bar on a line of its own. */
function screenLines(screen: string): string[] {
  // eslint-disable-next-line no-control-regex
  const plain = screen.replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '');
  return plain.split(/[\r\n]+/).filter((l) => l.trim() !== '');
}

const jsonLike = (l: string) => /\{\s*"/.test(l);

function vslLine(args: string[]): string {
  return [process.execPath, BIN, ...args].map(q).join(' ');
}

function trainArgs(run: string): string[] {
  return [
    ...trainRun(dataPath, run),
    ...TINY_MODEL,
    ...['--batch-size', '10', '--num-epochs', '1', '--log-step', '1', '--max-dev-captions', '20', '--backend', 'wasm'],
  ];
}

test('the rule: pretty on a TTY outside CI, JSON elsewhere; VSL_LOG_FORMAT (set by --log-format) wins', () => {
  assert.equal(isInteractive({ isTTY: true }, {}), true);
  assert.equal(isInteractive({ isTTY: true }, { CI: 'true' }), false);
  assert.equal(isInteractive({}, {}), false);
  assert.equal(defaultLogFormat({}, { isTTY: true }), 'pretty');
  assert.equal(defaultLogFormat({}, { isTTY: false }), 'json');
  assert.equal(defaultLogFormat({ CI: '1' }, { isTTY: true }), 'json');
  assert.equal(defaultLogFormat({ VSL_LOG_FORMAT: 'json' }, { isTTY: true }), 'json');
  assert.equal(defaultLogFormat({ VSL_LOG_FORMAT: 'pretty' }, { isTTY: false }), 'pretty');
});

test('pretty fields are key=value, nested objects flattened, no JSON', () => {
  const t = fieldsText({
    level: 30,
    time: 1,
    msg: 'm',
    n: 3,
    x: 0.123456789,
    s: 'a b',
    d: { a: 1, b: { c: 'x' } },
    l: [1, 2],
  });
  assert.equal(t, 'n=3 x=0.123457 s="a b" d.a=1 d.b.c=x l=1,2');
});

test('at a terminal: train and eval show pretty lines and a progress bar, never a JSON record', { skip: noPty }, () => {
  const run = path.join(tmp, 'run-tty');
  const cmd = [
    vslLine(trainArgs(run)),
    vslLine(['eval', '--model', path.join(run, 'model_best.h5'), '--split', 'test', '--workers', '1']),
  ].join(' && ');
  const r = inTerminal(cmd);
  assert.equal(r.status, 0, r.screen);
  const lines = screenLines(r.screen);
  assert.deepEqual(lines.filter(jsonLike), [], 'JSON reached the terminal');
  assert.ok(
    lines.some((l) => /^\[\d\d:\d\d:\d\d\] INFO: model ready .*module=SGR/.test(l)),
    r.screen,
  );
  assert.ok(
    lines.some((l) => /INFO: epoch 0 end of epoch: i2t R@1\/5\/10/.test(l)),
    r.screen,
  );
  assert.ok(
    lines.some((l) => /^epoch 0 \[.*\] \d+\/\d+ \| loss avg/.test(l)),
    `no progress bar: ${r.screen}`,
  );
  assert.ok(
    lines.some((l) => /^test +\| +\d/.test(l)),
    `no recall table: ${r.screen}`,
  );
  // train.log stays JSON lines whatever stderr shows
  const records = fs.readFileSync(path.join(run, 'train.log'), 'utf8').trim().split('\n');
  assert.ok(records.length > 2);
  for (const l of records) assert.equal(typeof (JSON.parse(l) as { msg?: unknown }).msg, 'string');
});

test('at a terminal with --log-format json: JSON lines, as asked', { skip: noPty }, () => {
  const r = inTerminal(vslLine(['--log-format', 'json', 'synth', '--out', path.join(tmp, 's1'), '--images', '3']));
  assert.equal(r.status, 0, r.screen);
  const json = screenLines(r.screen).filter(jsonLike);
  assert.ok(json.length >= 4, r.screen);
  for (const l of json) assert.equal(typeof (JSON.parse(l) as { msg?: unknown }).msg, 'string');
});

test('stderr not a terminal: JSON lines by default, pretty with --log-format pretty', () => {
  const run = (extra: string[]) =>
    spawnSync(process.execPath, [BIN, ...extra, 'synth', '--out', path.join(tmp, 's2'), '--images', '3'], {
      encoding: 'utf8',
      env: userEnv(),
    });
  const json = run([]).stderr.trim().split('\n');
  assert.ok(json.length >= 4);
  for (const l of json) assert.equal((JSON.parse(l) as { level?: unknown }).level, 30);
  const pretty = run(['--log-format', 'pretty']).stderr.trim().split('\n');
  assert.ok(pretty.length >= 4);
  assert.deepEqual(pretty.filter(jsonLike), []);
  assert.match(pretty[0], /INFO: wrote .*train_ims\.npy {2}split=train images=3 captions=15/);
});
