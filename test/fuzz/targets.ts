// The readers the fuzz harness runs, each with a valid base input, the real reader as vsl calls it, and where its
// input may be mutated (see mutations.ts). Every reader's output is reduced to a canonical string, so that a success
// can be compared with the base's.
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { readCaptions, imageDivisor } from '../../src/data/captions.js';
import { loadVocab, saveVocab, vocabFromWords, SPECIAL_TOKENS } from '../../src/data/vocab.js';
import { loadCheckpoint, saveCheckpoint, type ArrayRecord } from '../../src/io/checkpoint.js';
import { encodeNpyHeader } from '../../src/io/npyHeader.js';
import { expectFeatures, openNpy } from '../../src/io/npyRead.js';
import { unpickle } from '../../src/io/pickle.js';
import { flattenModel, readTorchCheckpoint } from '../../src/io/sgrafCheckpoint.js';
import { makeAllowList } from '../../src/io/torchGlobals.js';
import { readConfigFile, resolveOptions } from '../../src/train/options.js';
import { REPO_ROOT } from '../helpers/paths.js';
import type { MutationSpace, Regions } from './mutations.js';
import { pickleValueBytes, subtract } from './pickleOps.js';

export interface Target {
  name: string;
  /** The file name mutated copies get (its extension matters to nothing but the reader's messages). */
  fileName: string;
  /** Write the base input into `dir`; its bytes and where they may be mutated (or a promise of them). */
  make(dir: string): { base: Uint8Array; space: MutationSpace } | Promise<{ base: Uint8Array; space: MutationSpace }>;
  /** The real reader, as vsl calls it; its output (or a promise of it: the harness awaits it). */
  read(file: string): unknown;
}

/** A canonical text of a reader's output: maps as entry lists, typed arrays as type, length and CRC-32. */
export function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return `${x}n`;
    if (x instanceof Map) return [...x.entries()];
    if (ArrayBuffer.isView(x)) {
      const b = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
      return `${x.constructor.name}[${b.byteLength}]:${crc32(b).toString(16)}`;
    }
    if (typeof x === 'number' && !Number.isFinite(x)) return String(x);
    return x;
  });
}

const ALL = (len: number): Regions => [[0, len]];

/** A small deterministic generator for base data (the inputs must be the same in every run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

const npy: Target = {
  name: '.npy features',
  fileName: 'test_ims.npy',
  make(dir) {
    const r = lcg(1);
    const data = Float32Array.from({ length: 4 * 36 * 8 }, r);
    const header = encodeNpyHeader([4, 36, 8]);
    const base = Buffer.concat([header, new Uint8Array(data.buffer)]);
    fs.writeFileSync(path.join(dir, 'base.npy'), base);
    const len = base.length;
    // Feature values have no checksum: a changed finite value is another valid file. Everything else is judged.
    return {
      base,
      space: {
        edit: [[0, header.length]],
        resize: ALL(len),
        truncate: ALL(len),
        append: true,
        floats: [header.length, len, 4],
        oneResize: true,
      },
    };
  },
  read(file) {
    const h = openNpy(file, { quiet: true });
    try {
      expectFeatures(h, { regions: 36, dim: 8 });
      return { shape: h.shape, dtype: h.dtype, data: h.readRows(0, h.nRows) };
    } finally {
      h.close();
    }
  },
};

const h5Checkpoint: Target = {
  name: '.h5 checkpoint',
  fileName: 'checkpoint.h5',
  async make(dir) {
    const r = lcg(2);
    const rec = (shape: number[]): ArrayRecord => ({
      shape,
      data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, r),
    });
    const shapes: Record<string, number[]> = {
      'img_enc.fc.weight': [16, 8],
      'img_enc.fc.bias': [16],
      'txt_enc.embed.weight': [30, 8],
      'txt_enc.rnn.weight_ih_l0': [48, 8],
      'sim_enc.sim_eval_w.weight': [1, 8],
      'sim_enc.sim_eval_w.bias': [1],
    };
    const weights = new Map(Object.entries(shapes).map(([k, s]) => [k, rec(s)]));
    weights.set('sim_enc.bn.num_batches_tracked', { shape: [], data: new BigInt64Array([7n]) });
    const params = [...weights].filter(([, v]) => v.data instanceof Float32Array);
    const file = path.join(dir, 'base.h5');
    await saveCheckpoint(file, {
      weights,
      options: { model: { module: 'SAF', embedSize: 16, vocabSize: 30 }, data: { dataName: 'x' }, train: { lr: 2e-4 } },
      epoch: 3,
      iteration: 120,
      bestRsum: 412.5,
      optimizer: {
        step: 120,
        m: new Map(params.map(([k, v]) => [k, rec(v.shape)])),
        v: new Map(params.map(([k, v]) => [k, rec(v.shape)])),
      },
      dataOrder: { seed: 1, epoch: 3 },
      extra: { note: 'fuzz base' },
    });
    const base = fs.readFileSync(file);
    return {
      base,
      space: { edit: ALL(base.length), resize: ALL(base.length), truncate: ALL(base.length), append: true },
    };
  },
  read: (file) => loadCheckpoint(file),
};

async function torchOutput(file: string): Promise<unknown> {
  const ck = await readTorchCheckpoint(file);
  const { raw: _raw, model: _model, ...rest } = ck;
  return { ...rest, weights: flattenModel(ck) };
}

const torchZip: Target = {
  name: 'torch zip',
  fileName: 'model.pth.tar',
  make() {
    const base = fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/torch/sgr.zip.pth.tar'));
    return {
      base,
      space: { edit: ALL(base.length), resize: ALL(base.length), truncate: ALL(base.length), append: true },
    };
  },
  read: torchOutput,
};

/**
 * Where the legacy container may be edited: its first three pickles (magic, protocol, sys_info) and the storage key
 * list entirely; the object pickle's structure (opcodes, length prefixes, global names) but not its values; not
 * the raw storages. The container has no checksum: an edited value there is another valid checkpoint.
 */
function legacyEditable(b: Uint8Array): Regions {
  const none = new Map<string, unknown>();
  let end = 0;
  for (let k = 0; k < 3; k++) end = unpickle(b, { allow: none, file: 'base' }, end).end;
  const objStart = end;
  const persistentLoad = (pid: unknown) => {
    const t = pid as unknown[];
    return { key: String(t[2]), type: t[1], numel: Number(t[4]), offset: 0 };
  };
  end = unpickle(b, { allow: makeAllowList({ file: 'base', tensors: [] }), persistentLoad, file: 'base' }, end).end;
  const { values, end: objEnd } = pickleValueBytes(b, objStart);
  if (objEnd !== end) throw new Error(`pickle scanner ends at ${objEnd}, the unpickler at ${end}`);
  const storages = unpickle(b, { allow: none, file: 'base' }, end).end;
  return [[0, objStart], ...subtract(objStart, objEnd, values), [objEnd, storages]];
}

const torchLegacy: Target = {
  name: 'torch legacy',
  fileName: 'model.pth.tar',
  make() {
    const base = fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/torch/sgr.legacy.pth.tar'));
    const edit = legacyEditable(base);
    // bytes are inserted or deleted in the structure and among the storages, not inside a pickle's value
    const resize: Regions = [...edit, [edit[edit.length - 1][1], base.length]];
    return { base, space: { edit, resize, truncate: ALL(base.length), append: true, oneResize: true } };
  },
  read: torchOutput,
};

const WORDS = 'a the dog cat man woman red blue on in with of and is are two three small large running'.split(' ');

const vocab: Target = {
  name: 'vocab JSON',
  fileName: 'x_vocab.json',
  make(dir) {
    const file = path.join(dir, 'base_vocab.json');
    saveVocab(file, vocabFromWords([...SPECIAL_TOKENS, ...WORDS, 'café', 'naïve', '"quoted"', 'back\\slash']));
    const base = fs.readFileSync(file);
    return {
      base,
      space: { edit: ALL(base.length), resize: ALL(base.length), truncate: ALL(base.length), append: true },
    };
  },
  read: (file) => loadVocab(file).idx2word,
};

const NEWLINE = 0x0a;
const IMAGES = 6;
/** Bytes a captions file may gain: a line break, or bytes that are never valid UTF-8 anywhere. */
const CAPTION_BYTES = [NEWLINE, 0xc0, 0xc1, 0xf5, 0xf8, 0xfe, 0xff];

const captions: Target = {
  name: 'captions',
  fileName: 'test_caps.txt',
  make(dir) {
    const r = lcg(3);
    const lines = Array.from({ length: 5 * IMAGES }, () =>
      Array.from({ length: 6 }, () => WORDS[Math.floor(((r() + 1) / 2) * WORDS.length)]).join(' '),
    );
    lines[4] = 'a café — naïve “quoted” caption';
    const base = Buffer.from(lines.join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'base_caps.txt'), base);
    const newlines: [number, number][] = [];
    const cuts: [number, number][] = [];
    let seen = 0;
    base.forEach((c, i) => {
      if (c === NEWLINE) newlines.push([i, i + 1]);
      // cut at a line start, but not after exactly one caption per image: that is the layout's other valid form
      if (i > 0 && base[i - 1] === NEWLINE && ++seen !== IMAGES) cuts.push([i, i + 1]);
    });
    // A caption's words are free text (an edited word is another valid caption): the line structure and the
    // encoding are what a reader can judge, one mutation at a time (a second line break could restore the count).
    // (not the last caption's last byte: a line break there only cuts that caption short, as a shorter file would)
    return {
      base,
      space: {
        edit: [
          [0, base.length - 2],
          [base.length - 1, base.length],
        ],
        resize: newlines,
        truncate: cuts,
        append: true,
        bytes: CAPTION_BYTES,
        onlyBytes: true,
        maxOps: 1,
      },
    };
  },
  read(file) {
    const caps = readCaptions(file);
    return { imDiv: imageDivisor(IMAGES, caps.length, 'test_ims.npy', file), caps };
  },
};

/**
 * Editable bytes of a JSON config: keys, punctuation and the whitespace not touching a value. A value's bytes, and
 * the whitespace beside them (where an inserted digit or sign would join the value), are left alone: an edited
 * value is another valid config.
 */
function configRegions(text: string): Regions {
  const kinds = new Array<'key' | 'value' | 'punct' | 'ws'>(text.length);
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      let k = j + 1;
      while (/\s/.test(text[k] ?? '')) k++;
      kinds.fill(text[k] === ':' ? 'key' : 'value', i, j + 1);
      i = j + 1;
    } else if ('{}[]:,'.includes(c)) kinds[i++] = 'punct';
    else if (/\s/.test(c)) kinds[i++] = 'ws';
    else {
      let j = i;
      while (j < text.length && !/[\s,}\]]/.test(text[j])) j++;
      kinds.fill('value', i, j);
      i = j;
    }
  }
  const nextNonWs = (p: number, d: number): string | undefined => {
    while (kinds[p] === 'ws') p += d;
    return kinds[p];
  };
  const editable = kinds.map((k, p) =>
    k === 'ws' ? nextNonWs(p, -1) !== 'value' && nextNonWs(p, 1) !== 'value' : k === 'key' || k === 'punct',
  );
  const out: [number, number][] = [];
  editable.forEach((e, p) => {
    if (!e) return;
    const last = out[out.length - 1];
    if (last && last[1] === p) last[1] = p + 1;
    else out.push([p, p + 1]);
  });
  return out;
}

const config: Target = {
  name: 'train config',
  fileName: 'config.json',
  make() {
    const base = fs.readFileSync(path.join(REPO_ROOT, 'configs/demo_synthetic.json'));
    const edit = configRegions(base.toString('latin1')); // one char per byte: offsets are byte offsets
    // insertions only strictly inside an editable run, so that no inserted byte lands beside a value
    const resize = edit.filter(([s, e]) => e - s > 1).map(([s, e]) => [s + 1, e] as const);
    return { base, space: { edit, resize, truncate: ALL(base.length), append: true } };
  },
  read(file) {
    return resolveOptions(readConfigFile(file), {}, file);
  },
};

export const TARGETS: readonly Target[] = [npy, h5Checkpoint, torchZip, torchLegacy, vocab, captions, config];
