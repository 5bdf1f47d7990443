// `vsl demo` (npm run demo): the main job on the bundled synthetic default. Makes the synthetic dataset
// if it is absent, trains SGR with the small demo recipe (configs/demo_synthetic.json), evaluates the best
// checkpoint on the test split and prints the recall table.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { generateSynth } from '../data/synth.js';
import { readConfigFile, resolveOptions } from '../train/options.js';
import { train } from '../train/loop.js';
import { runEval } from './eval.js';
import { log } from '../util/log.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'make the synthetic dataset if absent, train SGR on it with the demo recipe, evaluate, print the table',
    )
    .option('--config <file>', 'training recipe', path.join(REPO, 'configs', 'demo_synthetic.json'))
    .option('--module <name>', 'SGR or SAF (overrides the recipe)')
    .option('--backend <name>', 'backend (overrides the recipe)')
    .action(async (o: { config: string; module?: string; backend?: string }) => {
      const flags: Record<string, unknown> = {};
      if (o.module) {
        flags.module = o.module;
        flags.modelName = `./runs/demo_${o.module}`;
      }
      if (o.backend) flags.backend = o.backend;
      const opts = resolveOptions(readConfigFile(o.config), flags, o.config);
      const dir = path.join(opts.dataPath, opts.dataName);
      if (!fs.existsSync(path.join(dir, 'train_ims.npy'))) {
        log().info(`no dataset at ${dir}: writing the synthetic one (500 train images, seed 1)`);
        generateSynth({
          out: opts.dataPath,
          name: opts.dataName,
          images: 500,
          evalImages: 100,
          seed: 1,
          imgDim: opts.imgDim,
        });
      }
      const t0 = performance.now();
      const s = await train(opts);
      if (s.stoppedBySignal) {
        process.exitCode = s.stoppedBySignal === 'SIGINT' ? 130 : 143;
        return;
      }
      const minutes = (performance.now() - t0) / 60000;
      process.stdout.write(
        `trained ${opts.module} for ${s.epochs} epochs in ${minutes.toFixed(1)} min; best dev rsum ${s.bestRsum.toFixed(1)}\n`,
      );
      process.stdout.write(`run report (open in a browser): ${path.join(opts.modelName, 'report.html')}\n`);
      process.stdout.write(`test split (${opts.dataName}), model ${path.join(opts.modelName, 'model_best.h5')}:\n`);
      process.stdout.write(
        await runEval({
          model: path.join(opts.modelName, 'model_best.h5'),
          dataPath: opts.dataPath,
          split: 'test',
          backend: opts.backend,
          progress: false,
        }),
      );
    });
}
