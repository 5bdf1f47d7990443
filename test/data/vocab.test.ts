import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readGroup } from '../../src/io/h5.js';
import {
  buildVocab,
  encodeCaption,
  loadVocab,
  lookup,
  parseVocab,
  saveVocab,
  vocabToJson,
} from '../../src/data/vocab.js';
import { VslError } from '../../src/util/errors.js';
import { GOLDEN, VOCAB } from '../helpers/paths.js';

function throwsWith(fn: () => unknown, parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VslError, `expected VslError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    return true;
  });
}

test('loads the shipped SCAN vocabularies (f30k 8,481 and coco 11,353 words)', () => {
  const f30k = loadVocab(path.join(VOCAB, 'f30k_precomp_vocab.json'));
  const coco = loadVocab(path.join(VOCAB, 'coco_precomp_vocab.json'));
  assert.equal(f30k.size, 8481);
  assert.equal(coco.size, 11353);
  for (const v of [f30k, coco]) {
    assert.deepEqual(v.idx2word.slice(0, 4), ['<pad>', '<start>', '<end>', '<unk>']);
    assert.equal(lookup(v, 'dog'), v.word2idx.get('dog'));
    assert.equal(lookup(v, 'no-such-word-xyz'), 3);
    for (let i = 0; i < v.size; i += 97) assert.equal(v.word2idx.get(v.idx2word[i]), i);
  }
});

test('encoding the golden captions reproduces the golden token ids and lengths', async () => {
  const vocab = loadVocab(path.join(GOLDEN, 'vocab.json'));
  const inputs = await readGroup(path.join(GOLDEN, 'SGR.h5'), 'inputs');
  const text = inputs.get('caption_text')!.data as string[];
  const caps = inputs.get('captions')!;
  const lengths = Array.from(inputs.get('lengths')!.data as BigInt64Array, Number);
  const L = caps.shape[1];
  assert.ok(text.length > 0, 'no golden caption');
  assert.equal(text.length, caps.shape[0]);
  text.forEach((t, i) => {
    const ids = Array.from(encodeCaption(vocab, t));
    assert.equal(ids.length, lengths[i], `length of caption ${i}`);
    const row = Array.from((caps.data as BigInt64Array).subarray(i * L, (i + 1) * L), Number);
    assert.deepEqual(ids, row.slice(0, lengths[i]), `ids of ${JSON.stringify(t)}`);
    assert.ok(
      row.slice(lengths[i]).every((x) => x === 0),
      'padding is <pad>',
    );
  });
});

test('validation names the file and what is wrong', () => {
  const ok = {
    word2idx: { '<pad>': 0, '<start>': 1, '<end>': 2, '<unk>': 3, dog: 4 },
    idx2word: { 0: '<pad>', 1: '<start>', 2: '<end>', 3: '<unk>', 4: 'dog' },
    idx: 5,
  };
  assert.equal(parseVocab(ok, 'v.json').size, 5);
  const noUnk = { word2idx: { '<pad>': 0, '<start>': 1, '<end>': 2, dog: 3 } };
  throwsWith(() => parseVocab(noUnk, 'v.json'), ['v.json', 'word2idx', '<unk>', 'no <unk>']);
  const noStart = { word2idx: { '<pad>': 0, '<end>': 1, '<unk>': 2, dog: 3 } };
  throwsWith(() => parseVocab(noStart, 'v.json'), ['v.json', 'no <start>']);
  const wrongId = { word2idx: { '<pad>': 0, '<start>': 1, '<unk>': 2, '<end>': 3 } };
  throwsWith(() => parseVocab(wrongId, 'v.json'), ['v.json', '<end>', 'expected id 2', 'found id 3']);
  const gap = { word2idx: { '<pad>': 0, '<start>': 1, '<end>': 2, '<unk>': 3, dog: 5 } };
  throwsWith(() => parseVocab(gap, 'v.json'), ['v.json', 'contiguous ids 0..4', 'id 5']);
  const dup = { word2idx: { '<pad>': 0, '<start>': 1, '<end>': 2, '<unk>': 3, dog: 3 } };
  throwsWith(() => parseVocab(dup, 'v.json'), ['v.json', 'id 3 used by both']);
  throwsWith(() => parseVocab({ ...ok, idx: 7 }, 'v.json'), ['v.json', 'idx', 'expected 5', 'found 7']);
  throwsWith(
    () => parseVocab({ ...ok, idx2word: { ...ok.idx2word, 4: 'cat' } }, 'v.json'),
    ['v.json', 'idx2word["4"]', '"dog"', '"cat"'],
  );
  throwsWith(() => parseVocab({ idx: 3 }, 'v.json'), ['v.json', 'word2idx', 'no such field']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-vocab-'));
  try {
    const f = path.join(dir, 'bad.json');
    fs.writeFileSync(f, '{"word2idx": ');
    throwsWith(() => loadVocab(f), [f, 'expected JSON', 'invalid JSON']);
    throwsWith(() => loadVocab(path.join(dir, 'missing.json')), ['missing.json', 'file not found']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('buildVocab: specials, then words with count >= threshold in first-appearance order', () => {
  const caps = ['A dog runs.', 'The dog sits.', 'a cat and a dog .', 'The cat sleeps', 'a dog, the cat'];
  // counts: a 4, dog 4, . 3, the 3, cat 3, ...
  const v = buildVocab(caps, 3);
  assert.deepEqual(v.idx2word, ['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog', '.', 'the', 'cat']);
  assert.deepEqual(buildVocab(caps, 4).idx2word.slice(4), ['a', 'dog']);
  assert.equal(buildVocab(caps, 1).size, 4 + 10);
});

test('save and load round-trip in the SCAN format (string keys in idx2word)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-vocab-'));
  try {
    const v = buildVocab(['a __proto__ dog', 'a toString dog', 'a constructor'], 1);
    const f = path.join(dir, 'sub', 'x_vocab.json');
    saveVocab(f, v);
    const raw = JSON.parse(fs.readFileSync(f, 'utf8')) as { idx2word: Record<string, string>; idx: number };
    assert.deepEqual(Object.keys(raw).sort(), ['idx', 'idx2word', 'word2idx']);
    assert.equal(raw.idx2word['4'], 'a');
    assert.equal(raw.idx, v.size);
    const back = loadVocab(f);
    assert.deepEqual(back.idx2word, v.idx2word);
    assert.equal(back.word2idx.get('__proto__'), v.word2idx.get('__proto__'));
    assert.deepEqual(vocabToJson(back), raw);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a vocabulary must be UTF-8 and hold word2idx, idx2word and idx (as the reference reads it)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsl-vocab-'));
  try {
    const ok = {
      word2idx: { '<pad>': 0, '<start>': 1, '<end>': 2, '<unk>': 3, café: 4 },
      idx2word: { 0: '<pad>', 1: '<start>', 2: '<end>', 3: '<unk>', 4: 'café' },
      idx: 5,
    };
    const f = path.join(dir, 'v.json');
    fs.writeFileSync(f, JSON.stringify(ok));
    assert.equal(loadVocab(f).idx2word[4], 'café');
    // one byte of é damaged: lenient decoding would turn it into U+FFFD in both maps and agree with itself
    const b = fs.readFileSync(f);
    for (let i = b.indexOf(0xc3); i >= 0; i = b.indexOf(0xc3, i + 1)) b[i] = 0xff;
    fs.writeFileSync(f, b);
    throwsWith(() => loadVocab(f), [f, 'content: expected UTF-8 JSON']);
    const { idx2word: _i, ...noIdx2word } = ok;
    throwsWith(() => parseVocab(noIdx2word, 'v.json'), ['v.json', 'idx2word', 'no such field']);
    const { idx: _n, ...noIdx } = ok;
    throwsWith(() => parseVocab(noIdx, 'v.json'), ['v.json', 'idx', 'no such field']);
    fs.writeFileSync(f, '[]');
    throwsWith(() => loadVocab(f), [f, 'top level', 'found an array']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
