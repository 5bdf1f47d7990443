import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { imageDivisor, readCaptions, splitCaptions, stripAscii } from '../../src/data/captions.js';
import { VslError } from '../../src/util/errors.js';

function withTmp(fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-caps-'));
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('splits lines like the reference: newline, CRLF, final empty line, ASCII strip only', () => {
  assert.deepEqual(splitCaptions('a dog\nthe cat .\n'), ['a dog', 'the cat .']);
  assert.deepEqual(splitCaptions('a dog\r\nthe cat .\r\n'), ['a dog', 'the cat .']);
  assert.deepEqual(splitCaptions('a dog\nthe cat .'), ['a dog', 'the cat .']);
  assert.deepEqual(splitCaptions('a dog\n\n\n'), ['a dog']);
  assert.deepEqual(splitCaptions('a\n\nb\n'), ['a', '', 'b'], 'a blank line in the middle is still a caption');
  assert.deepEqual(splitCaptions('  two  spaces \t\n'), ['two  spaces']);
  assert.deepEqual(splitCaptions(''), []);
  // bytes.strip() leaves non-ASCII whitespace alone
  assert.equal(stripAscii('\u00a0x\u00a0 \t'), '\u00a0x\u00a0');
});

test('readCaptions reads UTF-8 and names the file and line of invalid bytes', () => {
  withTmp((dir) => {
    const f = path.join(dir, 'train_caps.txt');
    fs.writeFileSync(f, 'un café\r\nÉcole\n');
    assert.deepEqual(readCaptions(f), ['un café', 'École']);
    fs.writeFileSync(f, Buffer.concat([Buffer.from('ok\nok\nbad '), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]));
    assert.throws(
      () => readCaptions(f),
      (e: unknown) => {
        assert.ok(e instanceof VslError);
        assert.match(
          e.message,
          new RegExp(
            `^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: line 3: expected UTF-8 text, found bytes that are not valid UTF-8`,
          ),
        );
        return true;
      },
    );
    const missing = path.join(dir, 'nope_caps.txt');
    assert.throws(() => readCaptions(missing), new RegExp(`${missing}: file not found`));
  });
});

test('im_div is 5 for 5 captions per image, 1 for one each, else an error naming counts and files', () => {
  assert.equal(imageDivisor(10, 50, 'x_ims.npy', 'x_caps.txt'), 5);
  assert.equal(imageDivisor(10, 10, 'x_ims.npy', 'x_caps.txt'), 1);
  assert.throws(
    () => imageDivisor(10, 49, 'data/f30k/test_ims.npy', 'data/f30k/test_caps.txt'),
    (e: unknown) => {
      assert.ok(e instanceof VslError);
      for (const p of ['data/f30k/test_caps.txt', 'data/f30k/test_ims.npy', '10 images', '50', 'found 49']) {
        assert.ok(e.message.includes(p), `${e.message} lacks ${p}`);
      }
      return true;
    },
  );
});
