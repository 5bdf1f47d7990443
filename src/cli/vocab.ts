// `vsl vocab`: build a vocabulary from a dataset's captions (as the reference's vocab.py) or check a vocabulary file.
import path from 'node:path';
import type { Command } from 'commander';
import { VslError } from '../util/errors.js';
import { readCaptions } from '../data/captions.js';
import { splitPaths } from '../data/precomp.js';
import { countTokens, loadVocab, saveVocab, vocabFromCounts } from '../data/vocab.js';
import fs from 'node:fs';

export function register(program: Command): void {
  const vocab = program
    .command('vocab')
    .description('build or check a SCAN-format vocabulary (word2idx / idx2word / idx)');
  vocab
    .command('build')
    .description(
      'tokenise <data-path>/<data-name>/train_caps.txt then dev_caps.txt and keep the words seen at least ' +
        '--threshold times (specials <pad> <start> <end> <unk> first, then first-appearance order)',
    )
    .requiredOption('--data-path <dir>', 'folder that holds <data-name>/')
    .requiredOption('--data-name <name>', 'dataset name, e.g. f30k_precomp or coco_precomp')
    .option('--threshold <n>', 'minimum count for a word to be kept', '4')
    .option('--out <file>', 'output file (default <data-path>/<data-name>_vocab.json)')
    .action((o: { dataPath: string; dataName: string; threshold: string; out?: string }) => {
      const threshold = Number(o.threshold);
      if (!/^\d+$/.test(o.threshold) || !Number.isSafeInteger(threshold)) {
        throw new VslError(`--threshold: expected a non-negative integer, found ${JSON.stringify(o.threshold)}`);
      }
      const counts = new Map<string, number>();
      let nCaps = 0;
      for (const split of ['train', 'dev']) {
        const file = splitPaths(o.dataPath, o.dataName, split).captions;
        if (!fs.existsSync(file)) {
          throw new VslError(
            `${file}: file not found (the captions of split '${split}' of data name '${o.dataName}' under data path '${o.dataPath}')`,
          );
        }
        const caps = readCaptions(file);
        nCaps += caps.length;
        countTokens(caps, counts);
      }
      const v = vocabFromCounts(counts, threshold);
      const out = o.out ?? path.join(o.dataPath, `${o.dataName}_vocab.json`);
      saveVocab(out, v);
      process.stdout.write(
        `vocabulary: ${v.size} words (${counts.size} distinct tokens in ${nCaps} captions, threshold ${threshold}) -> ${out}\n`,
      );
    });
  vocab
    .command('check <file>')
    .description('validate a vocabulary file and print its size')
    .action((file: string) => {
      const v = loadVocab(file);
      process.stdout.write(
        `${file}: ${v.size} words, <pad>=${v.pad} <start>=${v.start} <end>=${v.end} <unk>=${v.unk}\n`,
      );
    });
}
