import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSplit, splitPaths } from '../../src/data/precomp.js';
import { generateSynth } from '../../src/data/synth.js';
import { loadVocab } from '../../src/data/vocab.js';
import { VslError } from '../../src/util/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'bin/vsl');

function throwsWith(fn: () => unknown, parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VslError, `expected VslError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    return true;
  });
}

function withData(fn: (dataPath: string) => void): void {
  const dataPath = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-precomp-'));
  try {
    generateSynth({ out: dataPath, name: 'f30k_precomp', images: 12, evalImages: 3, imgDim: 8, seed: 5 });
    fn(dataPath);
  } finally {
    fs.rmSync(dataPath, { recursive: true, force: true });
  }
}

test('openSplit reads the SCAN layout: counts, im_div, caption -> image, rows', () => {
  withData((dp) => {
    const s = openSplit(dp, 'f30k_precomp', 'train', { imgDim: 8 });
    try {
      assert.equal(s.nImages, 12);
      assert.equal(s.nCaptions, 60);
      assert.equal(s.imDiv, 5);
      assert.equal(s.imgDim, 8);
      assert.equal(s.imageOf(0), 0);
      assert.equal(s.imageOf(59), 11);
      assert.equal(s.imageOf(27), 5);
      assert.equal(s.images.readRows(11, 12).length, 36 * 8);
      assert.equal(s.captions.length, 60);
    } finally {
      s.close();
    }
    const dev = openSplit(dp, 'f30k_precomp', 'testall', { imgDim: 8, maxCaptions: 10 });
    try {
      assert.equal(dev.nCaptions, 10);
      assert.equal(dev.nImages, 2);
      assert.equal(dev.nImagesInFile, 15);
      assert.equal(dev.imDiv, 5, 'im_div comes from the full counts');
    } finally {
      dev.close();
    }
  });
});

test('openSplit errors: missing files, wrong img_dim, caption count', () => {
  withData((dp) => {
    const p = splitPaths(dp, 'f30k_precomp', 'val');
    throwsWith(
      () => openSplit(dp, 'f30k_precomp', 'val'),
      [p.images, 'file not found', "split 'val'", "data name 'f30k_precomp'"],
    );
    throwsWith(
      () => openSplit(dp, 'coco_precomp', 'train'),
      [path.join(dp, 'coco_precomp'), "data name 'coco_precomp'"],
    );
    throwsWith(() => openSplit(path.join(dp, 'nowhere'), 'f30k_precomp', 'train'), ['nowhere', 'data path not found']);
    const t = splitPaths(dp, 'f30k_precomp', 'test');
    throwsWith(
      () => openSplit(dp, 'f30k_precomp', 'test', { imgDim: 2048 }),
      [t.images, 'img_dim', 'expected 2048', 'found 8'],
    );
    fs.rmSync(t.captions);
    throwsWith(() => openSplit(dp, 'f30k_precomp', 'test'), [t.captions, 'file not found', "split 'test'"]);
    const d = splitPaths(dp, 'f30k_precomp', 'dev');
    fs.appendFileSync(d.captions, 'one caption too many\n');
    throwsWith(() => openSplit(dp, 'f30k_precomp', 'dev'), [d.captions, d.images, '3 images', 'found 16']);
  });
});

function vsl(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, VSL_LOG_LEVEL: 'error' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('CLI: vsl synth, vsl vocab build / check, and a clear error on bad input', () => {
  const dp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-cli-'));
  try {
    const s = vsl([
      'synth',
      '--out',
      dp,
      '--name',
      'coco_precomp',
      '--images',
      '10',
      '--eval-images',
      '2',
      '--img-dim',
      '4',
      '--seed',
      '2',
    ]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /train: 10 images, 50 captions/);
    assert.match(s.stdout, /testall: 10 images, 50 captions/);
    assert.ok(s.stdout.includes(path.join(dp, 'coco_precomp_vocab.json')));
    const synthVocab = loadVocab(path.join(dp, 'coco_precomp_vocab.json'));

    const out = path.join(dp, 'rebuilt.json');
    const b = vsl(['vocab', 'build', '--data-path', dp, '--data-name', 'coco_precomp', '--out', out]);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(loadVocab(out).idx2word, synthVocab.idx2word);
    const b2 = vsl(['vocab', 'build', '--data-path', dp, '--data-name', 'coco_precomp', '--threshold', '1']);
    assert.equal(b2.code, 0, b2.stderr);
    assert.ok(loadVocab(path.join(dp, 'coco_precomp_vocab.json')).size >= synthVocab.size);

    const c = vsl(['vocab', 'check', out]);
    assert.equal(c.code, 0);
    assert.match(c.stdout, new RegExp(`${synthVocab.size} words`));

    const bad = path.join(dp, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ word2idx: { '<pad>': 0, '<start>': 1, '<end>': 2 } }));
    const e = vsl(['vocab', 'check', bad]);
    assert.notEqual(e.code, 0);
    assert.match(e.stderr, /^vsl: .*bad\.json: word2idx: expected the special token <unk> \(id 3\), found no <unk>/m);
    const m = vsl(['vocab', 'build', '--data-path', dp, '--data-name', 'f30k_precomp']);
    assert.notEqual(m.code, 0);
    assert.match(
      m.stderr,
      /train_caps\.txt: file not found \(the captions of split 'train' of data name 'f30k_precomp'/,
    );
    const z = vsl(['synth', '--out', dp, '--images', 'many']);
    assert.notEqual(z.code, 0);
    assert.match(z.stderr, /--images: expected an integer >= 1, found "many"/);
  } finally {
    fs.rmSync(dp, { recursive: true, force: true });
  }
});
