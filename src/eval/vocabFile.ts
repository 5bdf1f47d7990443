// Where the vocabulary of an evaluation is: `<vocabPath>/<dataName>_vocab.json`, a .json path taken as the file,
// else the checkpoint's folder, the data path (where `vsl synth` writes it) and ./vocab, in that order.
import fs from 'node:fs';
import path from 'node:path';
import { VslError } from '../util/errors.js';

/** The vocabulary file: an explicit folder/file, else the first existing of checkpoint folder, data path, ./vocab. */
export function resolveVocabFile(
  dataName: string,
  override: string | undefined,
  fromCheckpoint: string | undefined,
  dataPath: string,
): string {
  const inFolder = (dir: string) => path.join(dir, `${dataName}_vocab.json`);
  if (override !== undefined) {
    const file =
      override.endsWith('.json') && !(fs.existsSync(override) && fs.statSync(override).isDirectory())
        ? override
        : inFolder(override);
    if (!fs.existsSync(file))
      throw new VslError(`${file}: vocabulary file not found (--vocab-path ${override}, data name '${dataName}')`);
    return file;
  }
  const tried: string[] = [];
  for (const dir of [fromCheckpoint, dataPath, './vocab']) {
    if (!dir) continue;
    const f = inFolder(dir);
    if (tried.includes(f)) continue;
    tried.push(f);
    if (fs.existsSync(f)) return f;
  }
  throw new VslError(
    `vocabulary for data name '${dataName}' not found; tried ${tried.join(', ')} (pass --vocab-path DIR)`,
  );
}
