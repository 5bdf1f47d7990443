// Error messages: one printable bounded line; short escaped excerpts of input bytes; system causes by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileError, MAX_MESSAGE_CHARS, oneLine, quote, systemCode, VslError } from '../../src/util/errors.js';

test('a VslError message is one printable line of bounded length', () => {
  const e = new VslError(`x.npy: header: found "\u0000\u0007\x9b"\nsecond line\r\nthird \ud800 \u2028 é 漢`);
  assert.equal(e.message, 'x.npy: header: found "\\x00\\x07\\x9b" second line third \\ud800 \\u2028 é 漢');
  const long = new VslError('y'.repeat(5000));
  assert.ok(long.message.length <= MAX_MESSAGE_CHARS);
  assert.match(long.message, /\.\.\. \(4\d{3} more characters\)$/);
  assert.equal(oneLine('a\n\nb'), 'a  b');
});

test('quote: a short escaped excerpt, cut with "..."', () => {
  assert.equal(quote(new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00])), '"\\x93NUMPY\\x01\\x00"');
  assert.equal(quote('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(quote(new Uint8Array(100).fill(0x41), 8), '"AAAAAAAA"...');
});

test('system errors are named by cause, from Node or from an HDF5 message', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  assert.equal(
    fileError('/d/c.h5', enospc, 'write').message,
    '/d/c.h5: cannot write: no space left on device (ENOSPC)',
  );
  const eacces = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  assert.equal(fileError('/d/v.json', eacces).message, '/d/v.json: cannot read: permission denied (EACCES)');
  const enoent = Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  assert.equal(fileError('/d/x.npy', enoent, 'open').message, '/d/x.npy: file not found');
  const h5 = new Error(
    "#016: H5FDsec2.c in H5FD__sec2_write(): file write failed: time = Tue\n, errno = 51, error message = 'No space left on device', buf = 0x1",
  );
  assert.equal(systemCode(h5), 'ENOSPC');
  assert.equal(systemCode(new Error("error message = 'Read-only file system'")), 'EROFS');
  assert.equal(systemCode(new Error('something else')), undefined);
});
