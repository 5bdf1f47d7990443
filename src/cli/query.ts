// `vsl query`: the split's images ranked for free sentences, or its captions ranked for one image
// (src/query/retrieval.ts); --index takes the image side from `vsl index`. stdout: the ranked lists, or one JSON
// object with --json; logs go to stderr.
import type { Command } from 'commander';
import type { BackendChoice } from '../ops/backend.js';
import { Retrieval } from '../query/retrieval.js';
import { DEFAULT_ENGINE, engineNames } from '../query/engines.js';
import { imageText, queryJson, sentencesText } from '../query/format.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { parseIntOption } from './eval.js';

export interface QueryCliOptions {
  model?: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
  split?: string;
  index?: string;
  engine?: string;
  top: string;
  image?: string;
  workers?: string;
  backend?: string;
  json?: boolean;
}

/** The action of `vsl query`: returns what goes to stdout. */
export async function runQuery(sentences: string[], o: QueryCliOptions): Promise<string> {
  if (!o.model && !o.index) throw new VslError('--model: expected a checkpoint file (or --index)');
  const top = parseIntOption('--top', o.top, 1);
  const image = o.image !== undefined ? parseIntOption('--image', o.image, 0) : undefined;
  if (image === undefined && sentences.length === 0)
    throw new VslError('expected a sentence to search the images with (vsl query --model M "a dog ..."), or --image N');
  if (image !== undefined && sentences.length > 0)
    throw new VslError('expected either sentences or --image N, found both');
  if (sentences.some((s) => s.trim() === '')) throw new VslError('expected a sentence, found an empty one');
  const t0 = performance.now();
  const r = await Retrieval.open({
    modelPath: o.model,
    dataPath: o.dataPath,
    vocabPath: o.vocabPath,
    dataName: o.dataName,
    split: o.split,
    index: o.index,
    engine: o.engine,
    workers: o.workers !== undefined ? parseIntOption('--workers', o.workers, 1) : undefined,
    backend: (o.backend ?? 'auto') as BackendChoice,
  });
  try {
    const imageResult = image !== undefined ? await r.rankCaptions(image, top) : undefined;
    const sentenceResults = image === undefined ? await r.rankImages(sentences, top) : undefined;
    const s = r.seconds;
    const total = (performance.now() - t0) / 1000;
    log().info(
      `query answered in ${total.toFixed(2)} s (load ${s.load.toFixed(2)} s, ${r.index ? 'read the index' : 'encode images'} ${s.encodeImages.toFixed(2)} s, captions ${s.encodeCaptions.toFixed(2)} s, score ${s.score.toFixed(2)} s)`,
    );
    if (o.json)
      return (
        JSON.stringify(queryJson(r, imageResult ? { image: imageResult } : { sentences: sentenceResults! })) + '\n'
      );
    return imageResult ? imageText(r, imageResult) : sentencesText(r, sentenceResults!);
  } finally {
    await r.close();
  }
}

export function register(program: Command): void {
  program
    .command('query')
    .description(
      "rank a split's images for free sentences (tokenised as in training), or its captions for one image (--image N)",
    )
    .argument('[sentences...]', 'one or more sentences; the images are encoded once for all of them')
    .option('--model <file>', "checkpoint: vsl HDF5 (.h5) or PyTorch .pth.tar (with --index: the index's by default)")
    .option('--index <dir>', 'an image index written by vsl index: the images are not encoded again')
    .option('--data-path <dir>', "data path holding <data_name>/ (default: the checkpoint's)")
    .option('--vocab-path <dir>', 'folder holding <data_name>_vocab.json, or the .json file (default: as vsl eval)')
    .option('--data-name <name>', "data name (default: the checkpoint's)")
    .option('--split <name>', "split to search: test, testall, dev (default: the index's, else test)")
    .option('--top <n>', 'results to show', '10')
    .option('--image <n>', "rank the split's captions for image n (0-based), the ground truth marked")
    .option('--workers <n>', 'score worker threads for sentences (default: 1 below 20,000 pairs, else as vsl eval)')
    .option('--backend <name>', 'auto, tensorflow-gpu, tensorflow, wasm or cpu', 'auto')
    .option('--engine <name>', `scoring engine: ${engineNames().join(', ')}`, DEFAULT_ENGINE)
    .option('--json', 'print one JSON object instead of the lists', false)
    .action(async (sentences: string[], o: QueryCliOptions) => {
      process.stdout.write(await runQuery(sentences, o));
    });
}
