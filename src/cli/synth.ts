// `vsl synth`: write a synthetic SCAN-precomp dataset with planted image-text structure (see src/data/synth.ts).
import type { Command } from 'commander';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { generateSynth } from '../data/synth.js';

function intOption(name: string, value: string, min: number): number {
  const v = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(v) || v < min) {
    throw new VslError(`${name}: expected an integer >= ${min}, found ${JSON.stringify(value)}`);
  }
  return v;
}

export function register(program: Command): void {
  program
    .command('synth')
    .description(
      'write a synthetic dataset in the SCAN precomp layout (train, dev, test, testall + <name>_vocab.json) ' +
        'whose captions name concepts planted in the region features',
    )
    .option('--out <dir>', 'data path to write into (the dataset goes to <out>/<name>/)', 'data')
    .option('--name <name>', 'data name', 'f30k_precomp')
    .option('--images <n>', 'train images (5 captions each)', '500')
    .option('--eval-images <n>', 'dev and test images (testall gets 5x as many; its first ones are test)', '100')
    .option('--img-dim <n>', 'feature dimension of each of the 36 regions', '2048')
    .option('--seed <n>', 'random seed (same seed and options -> identical files)', '1')
    .action((o: Record<string, string>) => {
      const t0 = Date.now();
      const res = generateSynth({
        out: o.out,
        name: o.name,
        images: intOption('--images', o.images, 1),
        evalImages: intOption('--eval-images', o.evalImages, 1),
        imgDim: intOption('--img-dim', o.imgDim, 1),
        seed: intOption('--seed', o.seed, -(2 ** 31)),
        onSplit: (s) =>
          log().info({ split: s.split, images: s.nImages, captions: s.nCaptions }, `wrote ${s.imagesPath}`),
      });
      for (const s of res.splits) {
        process.stdout.write(
          `${s.split}: ${s.nImages} images, ${s.nCaptions} captions -> ${s.imagesPath}, ${s.captionsPath}\n`,
        );
      }
      process.stdout.write(`vocabulary: ${res.vocab.size} words -> ${res.vocabPath}\n`);
      process.stdout.write(`dataset written to ${res.dir} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    });
}
