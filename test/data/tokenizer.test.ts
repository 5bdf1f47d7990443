import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { asciiLower, sentTokenize, tokenizeCaption, treebankTokenize, wordTokenize } from '../../src/data/tokenizer.js';
import { encodeCaption, vocabFromWords } from '../../src/data/vocab.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FIX = path.join(ROOT, 'test/fixtures/tokenizer');

interface Fixture {
  nltk: string;
  punkt: string;
  cases: Array<{ raw: string; tokens: string[] }>;
}

function load(name: string): Fixture {
  return JSON.parse(fs.readFileSync(path.join(FIX, name), 'utf8')) as Fixture;
}

function checkAll(fx: Fixture, minCases: number): void {
  assert.ok(fx.cases.length >= minCases, `only ${fx.cases.length} cases`);
  const wrong: string[] = [];
  for (const c of fx.cases) {
    const got = tokenizeCaption(c.raw);
    if (JSON.stringify(got) !== JSON.stringify(c.tokens)) {
      wrong.push(`${JSON.stringify(c.raw)}\n   vsl:  ${JSON.stringify(got)}\n   nltk: ${JSON.stringify(c.tokens)}`);
    }
  }
  assert.equal(
    wrong.length,
    0,
    `${wrong.length}/${fx.cases.length} captions differ from NLTK ${fx.nltk}:\n${wrong.slice(0, 10).join('\n')}`,
  );
}

test('tokens identical to NLTK word_tokenize on the hand-picked tricky captions', () => {
  checkAll(load('cases.json'), 60);
});

test('tokens identical to NLTK word_tokenize on 1000 generated captions (word and character soup)', () => {
  checkAll(load('fuzz.json'), 1000);
});

test('lower-casing is ASCII-only, as on the reference bytes', () => {
  assert.equal(asciiLower('ÉCOLE Über ABC'), 'École Über abc');
  assert.deepEqual(tokenizeCaption('An ÉCOLE bus.'), ['an', 'École', 'bus', '.']);
});

test('Punkt splits at a period followed by a new sentence, not after abbreviations', () => {
  assert.deepEqual(sentTokenize('a man. a dog.'), ['a man.', 'a dog.']);
  assert.deepEqual(sentTokenize('mr. smith and st. mark'), ['mr. smith and st. mark']);
  assert.deepEqual(wordTokenize('a man. a dog'), ['a', 'man', '.', 'a', 'dog']);
  // without the sentence split, the Treebank tokenizer leaves a mid-text period attached
  assert.deepEqual(treebankTokenize('a man. a dog'), ['a', 'man.', 'a', 'dog']);
});

test('encodeCaption adds <start>/<end> and maps unknown words to <unk>', () => {
  const v = vocabFromWords(['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog', '.', 'ca', "n't"]);
  assert.deepEqual(Array.from(encodeCaption(v, "A dog can't fly.")), [1, 4, 5, 7, 8, 3, 6, 2]);
  assert.deepEqual(Array.from(encodeCaption(v, '')), [1, 2]);
});
