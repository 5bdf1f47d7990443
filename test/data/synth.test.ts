import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readCaptions } from '../../src/data/captions.js';
import { openNpy, readNpy } from '../../src/io/npyRead.js';
import { CONCEPT_WORDS, generateSynth, synthWorld } from '../../src/data/synth.js';
import { buildVocab, loadVocab } from '../../src/data/vocab.js';
import { VslError } from '../../src/util/errors.js';

const SPLITS = ['train', 'dev', 'test', 'testall'];

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-synth-'));
}

function filesOf(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else out.push(path.relative(root, path.join(d, e.name)));
    }
  };
  walk(root);
  return out.sort();
}

test('same seed -> identical bytes; different seed -> different data', () => {
  const [a, b, c] = [tmp(), tmp(), tmp()];
  try {
    const opts = { name: 'f30k_precomp', images: 20, evalImages: 4, imgDim: 16 };
    generateSynth({ ...opts, out: a, seed: 7 });
    generateSynth({ ...opts, out: b, seed: 7 });
    generateSynth({ ...opts, out: c, seed: 8 });
    const fa = filesOf(a);
    assert.equal(fa.length, 9, `4 splits x (captions, images) and the vocabulary: ${fa.join(', ')}`);
    assert.deepEqual(fa, filesOf(b));
    assert.deepEqual(fa, filesOf(c));
    for (const f of fa)
      assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `${f} differs between runs`);
    for (const f of fa.filter((x) => !x.endsWith('_vocab.json'))) {
      assert.ok(
        !fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(c, f))),
        `${f} same for seeds 7 and 8`,
      );
    }
  } finally {
    for (const d of [a, b, c]) fs.rmSync(d, { recursive: true, force: true });
  }
});

test('SCAN layout: splits, shapes, 5 captions per image, testall starts with test, vocab from train+dev', () => {
  const out = tmp();
  try {
    const res = generateSynth({ out, name: 'coco_precomp', images: 30, evalImages: 6, imgDim: 24, seed: 3 });
    const dir = path.join(out, 'coco_precomp');
    assert.equal(res.dir, dir);
    assert.deepEqual(fs.readdirSync(dir).sort(), SPLITS.flatMap((s) => [`${s}_caps.txt`, `${s}_ims.npy`]).sort());
    const sizes: Record<string, number> = { train: 30, dev: 6, test: 6, testall: 30 };
    for (const s of SPLITS) {
      const h = openNpy(path.join(dir, `${s}_ims.npy`));
      assert.deepEqual([...h.shape], [sizes[s], 36, 24]);
      assert.equal(h.dtype, '<f4');
      const all = h.readRows(0, h.nRows);
      assert.ok(
        all.every((v) => v >= 0 && Number.isFinite(v)),
        'non-negative features',
      );
      h.close();
      const caps = readCaptions(path.join(dir, `${s}_caps.txt`));
      assert.equal(caps.length, 5 * sizes[s]);
      assert.ok(fs.readFileSync(path.join(dir, `${s}_caps.txt`), 'utf8').endsWith('\n'));
    }
    const test = readNpy(path.join(dir, 'test_ims.npy')).data;
    const testall = readNpy(path.join(dir, 'testall_ims.npy')).data;
    assert.deepEqual(testall.subarray(0, test.length), test);
    assert.ok(!testall.subarray(test.length, 2 * test.length).every((v, i) => v === test[i]));
    const testCaps = readCaptions(path.join(dir, 'test_caps.txt'));
    assert.deepEqual(readCaptions(path.join(dir, 'testall_caps.txt')).slice(0, 30), testCaps);

    assert.equal(res.vocabPath, path.join(out, 'coco_precomp_vocab.json'));
    const v = loadVocab(res.vocabPath);
    const expected = buildVocab(
      [...readCaptions(path.join(dir, 'train_caps.txt')), ...readCaptions(path.join(dir, 'dev_caps.txt'))],
      4,
    );
    assert.deepEqual(v.idx2word, expected.idx2word);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('planted structure: captions name the concepts whose prototypes appear among the regions', () => {
  const out = tmp();
  try {
    generateSynth({ out, name: 'x', images: 40, evalImages: 2, imgDim: 64, seed: 11 });
    const caps = readCaptions(path.join(out, 'x/train_caps.txt'));
    const feats = readNpy(path.join(out, 'x/train_ims.npy')).data;
    const conceptSet = new Set(CONCEPT_WORDS);
    const concepts: Set<string>[] = [];
    for (let i = 0; i < 40; i++) {
      const sets = caps.slice(5 * i, 5 * i + 5).map((c) => new Set(c.split(' ').filter((w) => conceptSet.has(w))));
      for (const s of sets)
        assert.deepEqual([...s].sort(), [...sets[0]].sort(), `image ${i}: all 5 captions name the same concepts`);
      assert.ok(sets[0].size >= 2 && sets[0].size <= 4);
      concepts.push(sets[0]);
    }
    assert.equal(new Set(concepts.map((s) => [...s].sort().join(','))).size, 40, 'distinct concept sets');
    // Each named concept has >= 3 regions close to its prototype; concepts not named have no such region.
    const D = 64;
    const world = synthWorld(11, D);
    const cos = (x: ArrayLike<number>, y: ArrayLike<number>) => {
      let s = 0;
      let nx = 0;
      let ny = 0;
      for (let d = 0; d < D; d++) {
        s += x[d] * y[d];
        nx += x[d] * x[d];
        ny += y[d] * y[d];
      }
      return s / Math.sqrt(nx * ny);
    };
    for (let i = 0; i < 40; i++) {
      CONCEPT_WORDS.forEach((c, k) => {
        let close = 0;
        for (let r = 0; r < 36; r++)
          if (cos(feats.subarray((i * 36 + r) * D, (i * 36 + r + 1) * D), world.prototypes[k]) > 0.8) close++;
        if (concepts[i].has(c)) assert.ok(close >= 3 && close <= 6, `image ${i}, concept ${c}: ${close} regions`);
        else assert.equal(close, 0, `image ${i} has a region of concept ${c} that its captions do not name`);
      });
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('bad options are errors', () => {
  const out = tmp();
  try {
    assert.throws(
      () => generateSynth({ out, name: 'x', images: 0, seed: 1 }),
      (e: unknown) => e instanceof VslError && /images: expected an integer >= 1, found 0/.test(e.message),
    );
    assert.throws(
      () => generateSynth({ out, name: 'a/b', images: 2, seed: 1 }),
      (e: unknown) => e instanceof VslError && /name/.test(e.message),
    );
    assert.throws(
      () => generateSynth({ out, name: 'x', images: 2, seed: 1.5 }),
      (e: unknown) => e instanceof VslError && /seed/.test(e.message),
    );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

// Speed is the bench's business; this checks that every split comes out whole at the real feature size.
test('full size: 200 train images at img_dim 2048 (+ dev, test, testall), every split whole', () => {
  const out = tmp();
  try {
    const t0 = performance.now();
    const res = generateSynth({ out, name: 'f30k_precomp', images: 200, evalImages: 40, imgDim: 2048, seed: 1 });
    const s = (performance.now() - t0) / 1000;
    const images = res.splits.reduce((n, x) => n + x.nImages, 0);
    console.log(
      `# synth: ${images} images x 36 x 2048 written in ${s.toFixed(2)} s (${(images / s).toFixed(0)} images/s)`,
    );
    const sizes: Record<string, number> = { train: 200, dev: 40, test: 40, testall: 200 };
    assert.deepEqual(
      res.splits.map((x) => [x.split, x.nImages, x.nCaptions]),
      SPLITS.map((x) => [x, sizes[x], 5 * sizes[x]]),
    );
    for (const x of res.splits) {
      const h = openNpy(x.imagesPath);
      try {
        assert.deepEqual([...h.shape], [x.nImages, 36, 2048]);
        assert.equal(fs.statSync(x.imagesPath).size, h.dataOffset + x.nImages * 36 * 2048 * 4, 'no bytes missing');
        const last = h.readRows(x.nImages - 1, x.nImages);
        assert.ok(
          last.every((v) => v >= 0 && Number.isFinite(v)) && last.some((v) => v > 0),
          `${x.split}: the last image is written`,
        );
      } finally {
        h.close();
      }
      assert.equal(readCaptions(x.captionsPath).length, x.nCaptions);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
