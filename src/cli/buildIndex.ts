// `vsl index`: a split's image side encoded once into a folder (src/query/buildIndex.ts) for `vsl query --index`
// and `vsl serve`. SIGINT / SIGTERM stop it between batches with nothing left behind.
import type { Command } from 'commander';
import type { BackendChoice } from '../ops/backend.js';
import { buildIndex } from '../query/buildIndex.js';
import { StopOnSignal } from '../eval/stop.js';
import { VslError } from '../util/errors.js';

interface IndexCliOptions {
  model?: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
  split: string;
  out?: string;
  backend?: string;
}

/** The action of `vsl index`: returns what goes to stdout. */
async function runIndex(o: IndexCliOptions): Promise<string> {
  if (!o.model) throw new VslError('--model: expected a checkpoint file');
  if (!o.out) throw new VslError('--out: expected the folder to write the index to');
  const stop = new StopOnSignal();
  try {
    const m = await buildIndex({
      modelPath: o.model,
      dataPath: o.dataPath,
      vocabPath: o.vocabPath,
      dataName: o.dataName,
      split: o.split,
      out: o.out,
      backend: (o.backend ?? 'auto') as BackendChoice,
      shouldStop: () => stop.requested !== null,
    });
    return (
      `index of ${m.data.nImages} images of ${m.data.dataName}/${m.data.split} (${m.model.module}, ` +
      `embed ${m.model.config.embedSize}) written to ${o.out} in ${m.seconds.encode.toFixed(1)} s\n`
    );
  } finally {
    stop.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('index')
    .description(
      "encode a split's images once (regions and global vectors) into a folder, for vsl query --index and vsl serve",
    )
    .option('--model <file>', 'checkpoint: vsl HDF5 (.h5) or PyTorch .pth.tar')
    .option('--data-path <dir>', "data path holding <data_name>/ (default: the checkpoint's)")
    .option('--vocab-path <dir>', 'folder holding <data_name>_vocab.json, or the .json file (default: as vsl eval)')
    .option('--data-name <name>', "data name (default: the checkpoint's)")
    .option('--split <name>', 'split to index: test, testall, dev', 'test')
    .option('--out <dir>', 'the index folder (written whole or not at all; an older index there is replaced)')
    .option('--backend <name>', 'auto, tensorflow-gpu, tensorflow, wasm or cpu', 'auto')
    .action(async (o: IndexCliOptions) => {
      process.stdout.write(await runIndex(o));
    });
}
