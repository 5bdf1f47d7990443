// Vocabulary in the SCAN JSON format: {"word2idx": {word: id}, "idx2word": {"0": word, ...}, "idx": size}.
// Special tokens: <pad>=0, <start>=1, <end>=2, <unk>=3; real words follow from id 4.
import fs from 'node:fs';
import path from 'node:path';
import { badInput, fileError } from '../util/errors.js';
import { writeFileAtomic } from '../util/atomicFile.js';
import { tokenizeCaption } from './tokenizer.js';

export const SPECIAL_TOKENS = ['<pad>', '<start>', '<end>', '<unk>'] as const;

export interface Vocab {
  /** word -> id (the only map used for encoding). */
  readonly word2idx: ReadonlyMap<string, number>;
  /** id -> word, ids 0..size-1. */
  readonly idx2word: readonly string[];
  readonly size: number;
  readonly pad: number;
  readonly start: number;
  readonly end: number;
  readonly unk: number;
}

function makeVocab(words: readonly string[]): Vocab {
  const word2idx = new Map<string, number>();
  words.forEach((w, i) => word2idx.set(w, i));
  return { word2idx, idx2word: words, size: words.length, pad: 0, start: 1, end: 2, unk: 3 };
}

/** Build a vocabulary from its words in id order (specials first). */
export function vocabFromWords(words: readonly string[], source = 'vocabulary'): Vocab {
  SPECIAL_TOKENS.forEach((t, i) => {
    if (words[i] !== t)
      throw badInput(
        source,
        'special tokens',
        `${t} at id ${i}`,
        words[i] === undefined ? 'nothing' : JSON.stringify(words[i]),
      );
  });
  const seen = new Set<string>();
  for (const w of words) {
    if (seen.has(w)) throw badInput(source, 'words', 'each word once', `${JSON.stringify(w)} twice`);
    seen.add(w);
  }
  return makeVocab([...words]);
}

/** Id of a word, or <unk>'s id. */
export function lookup(v: Vocab, word: string): number {
  return v.word2idx.get(word) ?? v.unk;
}

/** Parse and validate a SCAN vocabulary object (as JSON.parse returns it); `file` names the source in errors. */
export function parseVocab(obj: unknown, file: string): Vocab {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    const found = Array.isArray(obj) ? 'an array' : obj === null ? 'null' : `a ${typeof obj}`;
    throw badInput(file, 'top level', 'an object with word2idx, idx2word, idx', found);
  }
  const o = obj as Record<string, unknown>;
  const w2i = o.word2idx;
  if (typeof w2i !== 'object' || w2i === null || Array.isArray(w2i)) {
    throw badInput(
      file,
      'word2idx',
      'an object mapping words to integer ids',
      w2i === undefined ? 'no such field' : JSON.stringify(w2i).slice(0, 60),
    );
  }
  SPECIAL_TOKENS.forEach((t, i) => {
    const id = (w2i as Record<string, unknown>)[t];
    if (!Object.prototype.hasOwnProperty.call(w2i, t))
      throw badInput(file, 'word2idx', `the special token ${t} (id ${i})`, `no ${t}`);
    if (id !== i) throw badInput(file, `word2idx["${t}"]`, `id ${i}`, `id ${JSON.stringify(id)}`);
  });
  const entries = Object.entries(w2i as Record<string, unknown>);
  const n = entries.length;
  const words = new Array<string | undefined>(n);
  for (const [w, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id))
      throw badInput(file, `word2idx[${JSON.stringify(w)}]`, 'an integer id', JSON.stringify(id));
    if (id < 0 || id >= n) {
      throw badInput(file, `word2idx[${JSON.stringify(w)}]`, `contiguous ids 0..${n - 1} (one per word)`, `id ${id}`);
    }
    if (words[id] !== undefined) {
      throw badInput(
        file,
        'word2idx',
        `contiguous ids 0..${n - 1} (one per word)`,
        `id ${id} used by both ${JSON.stringify(words[id])} and ${JSON.stringify(w)}`,
      );
    }
    words[id] = w;
  }
  // idx2word and idx are required (the reference's deserialize_vocab reads all three) and must agree with word2idx.
  const i2w = o.idx2word;
  for (const k of ['idx2word', 'idx'])
    if (o[k] === undefined)
      throw badInput(file, k, `a field "${k}" (SCAN vocabularies have word2idx, idx2word, idx)`, 'no such field');
  {
    if (typeof i2w !== 'object' || i2w === null)
      throw badInput(file, 'idx2word', 'an object mapping "id" strings to words', JSON.stringify(i2w).slice(0, 60));
    const keys = Object.keys(i2w);
    if (keys.length !== n) throw badInput(file, 'idx2word', `${n} entries (as word2idx)`, `${keys.length}`);
    for (const k of keys) {
      const id = Number(k);
      const w = (i2w as Record<string, unknown>)[k];
      if (!Number.isInteger(id) || String(id) !== k || id < 0 || id >= n)
        throw badInput(file, 'idx2word', `keys "0".."${n - 1}"`, `key ${JSON.stringify(k)}`);
      if (w !== words[id])
        throw badInput(file, `idx2word["${k}"]`, `${JSON.stringify(words[id])} (as word2idx)`, JSON.stringify(w));
    }
  }
  if (o.idx !== undefined && o.idx !== n)
    throw badInput(file, 'idx', `${n} (the number of words)`, JSON.stringify(o.idx));
  return makeVocab(words as string[]);
}

/** Load and validate a SCAN vocabulary JSON file. */
export function loadVocab(file: string): Vocab {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw fileError(file, e);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw badInput(file, 'content', 'UTF-8 JSON', 'bytes that are not UTF-8');
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw badInput(file, 'content', 'JSON', `invalid JSON (${(e as Error).message})`);
  }
  return parseVocab(obj, file);
}

/** The SCAN JSON object of a vocabulary. */
export function vocabToJson(v: Vocab): {
  word2idx: Record<string, number>;
  idx2word: Record<string, string>;
  idx: number;
} {
  const word2idx: Record<string, number> = {};
  const idx2word: Record<string, string> = {};
  v.idx2word.forEach((w, i) => {
    Object.defineProperty(word2idx, w, { value: i, enumerable: true, writable: true, configurable: true });
    idx2word[String(i)] = w;
  });
  return { word2idx, idx2word, idx: v.size };
}

/** Write a vocabulary as SCAN JSON (creating the directory). */
export function saveVocab(file: string, v: Vocab): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, JSON.stringify(vocabToJson(v)));
}

/** Token counts in first-appearance order (Python 3's Counter iterates in insertion order). */
export function countTokens(captions: Iterable<string>, counts = new Map<string, number>()): Map<string, number> {
  for (const c of captions) for (const t of tokenizeCaption(c)) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

/**
 * The reference's vocab.py: tokenise every caption (train then dev), keep words seen at least `threshold` times,
 * specials first, then words in first-appearance order.
 */
export function buildVocab(captions: Iterable<string>, threshold = 4): Vocab {
  return vocabFromCounts(countTokens(captions), threshold);
}

/** Specials, then the words counted at least `threshold` times, in the counts' insertion order. */
export function vocabFromCounts(counts: ReadonlyMap<string, number>, threshold = 4): Vocab {
  const words: string[] = [...SPECIAL_TOKENS];
  const have = new Set<string>(words);
  for (const [w, c] of counts) {
    if (c >= threshold && !have.has(w)) {
      have.add(w);
      words.push(w);
    }
  }
  return makeVocab(words);
}

/** Token ids of a caption: [<start>] + ids + [<end>], unknown words -> <unk>. */
export function encodeCaption(vocab: Vocab, text: string): Int32Array {
  const toks = tokenizeCaption(text);
  const ids = new Int32Array(toks.length + 2);
  ids[0] = vocab.start;
  for (let i = 0; i < toks.length; i++) ids[i + 1] = vocab.word2idx.get(toks[i]) ?? vocab.unk;
  ids[toks.length + 1] = vocab.end;
  return ids;
}
