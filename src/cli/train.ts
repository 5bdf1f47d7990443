// `vsl train`: options as the reference's opts.py (kebab-case), a --config JSON file, flags override it.
import { Command, Option } from 'commander';
import { readConfigFile, resolveOptions, TrainOptionsSchema } from '../train/options.js';
import { train } from '../train/loop.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`expected an integer, found ${v}`);
  return n;
};
const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`expected a number, found ${v}`);
  return n;
};

/** Default of a schema field, for the help text (the schema holds the defaults). */
function dflt(key: keyof typeof TrainOptionsSchema.shape): string {
  const r = TrainOptionsSchema.shape[key].safeParse(undefined);
  return r.success && r.data !== undefined ? ` (default: ${JSON.stringify(r.data)})` : '';
}

export function addTrainOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'JSON file of options (names as below, camelCase); flags override it')
    .option('--data-path <dir>', 'root holding <data_name>/' + dflt('dataPath'))
    .option('--data-name <name>', 'coco_precomp or f30k_precomp' + dflt('dataName'))
    .addOption(new Option('--data <name>', 'alias of --data-name').hideHelp())
    .option('--vocab-path <dir>', 'folder holding <data_name>_vocab.json (default: the data path)')
    .option('--model-name <dir>', 'run directory: checkpoints, train.log, metrics.jsonl' + dflt('modelName'))
    .option('--batch-size <n>', 'training mini-batch' + dflt('batchSize'), int)
    .option('--num-epochs <n>', 'epochs' + dflt('numEpochs'), int)
    .option('--lr-update <n>', 'epochs between x0.1 learning-rate decays' + dflt('lrUpdate'), int)
    .option('--learning-rate <lr>', 'initial Adam learning rate' + dflt('learningRate'), num)
    .option('--log-step <n>', 'iterations between log lines' + dflt('logStep'), int)
    .option('--val-step <n>', 'iterations between extra validations' + dflt('valStep'), int)
    .option('--grad-clip <x>', 'global gradient-norm clip, <= 0 disables' + dflt('gradClip'), num)
    .option('--margin <x>', 'hinge margin' + dflt('margin'), num)
    .option('--no-max-violation', 'sum the hinge over all negatives (the reference: passing --max_violation)')
    .option('--img-dim <n>', 'region feature dim' + dflt('imgDim'), int)
    .option('--word-dim <n>', 'word embedding dim' + dflt('wordDim'), int)
    .option('--embed-size <n>', 'joint space dim' + dflt('embedSize'), int)
    .option('--sim-dim <n>', 'similarity vector dim' + dflt('simDim'), int)
    .option('--no-bi-gru', 'unidirectional GRU (the reference: passing --bi_gru)')
    .option('--no-imgnorm', 'skip the l2norm after the image fc')
    .option('--no-txtnorm', 'skip the l2norm after the GRU')
    .addOption(new Option('--module <name>', 'similarity module' + dflt('module')).choices(['SGR', 'SAF']))
    .option('--sgr-step <n>', 'graph reasoning steps' + dflt('sgrStep'), int)
    .option('--seed <n>', 'seed of the initialisation, data order and dropout' + dflt('seed'), int)
    .addOption(
      new Option('--semantic-loss <kind>', 'semantic loss' + dflt('semanticLoss')).choices([
        'visual',
        'visual+textual',
        'none',
      ]),
    )
    .option(
      '--warmup-sum-epochs <n>',
      'epochs of the summed hinge before hardest negatives (demo recipe)' + dflt('warmupSumEpochs'),
      int,
    )
    .option(
      '--semantic-warmup-epochs <n>',
      'epochs of the hinge alone before the semantic loss joins (demo recipe)' + dflt('semanticWarmupEpochs'),
      int,
    )
    .option('--dropout <p>', 'dropout probability' + dflt('dropout'), num)
    .option('--chunk-mb <mb>', 'device memory budget of one scoring chunk' + dflt('chunkMb'), num)
    .option(
      '--workers <n>',
      'threads for the score block of a training step: 1, or 2 (a worker thread takes part of the captions); default 2 on wasm/cpu, 1 on the native backends',
      int,
    )
    .option('--max-dev-captions <n>', 'validation on the first n dev captions' + dflt('maxDevCaptions'), int)
    .option('--backend <name>', 'auto, tensorflow-gpu, tensorflow, wasm or cpu' + dflt('backend'))
    .option('--resume <file>', 'continue from a checkpoint_last.h5');
}

/** The options a user gave on the command line (not commander's defaults), in schema names. */
export function flagsOf(cmd: Command): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const opts = cmd.opts();
  const rename: Record<string, string> = { data: 'dataName', imgnorm: 'noImgnorm', txtnorm: 'noTxtnorm' };
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'config' || cmd.getOptionValueSource(k) !== 'cli') continue;
    if (k === 'imgnorm' || k === 'txtnorm') out[rename[k]] = !v;
    else out[rename[k] ?? k] = v;
  }
  return out;
}

export function register(program: Command): void {
  addTrainOptions(
    program.command('train').description('train SGR or SAF with the hinge + visual semantic loss'),
  ).action(async (_o, cmd: Command) => {
    const file = cmd.opts().config as string | undefined;
    const o = resolveOptions(file ? readConfigFile(file) : {}, flagsOf(cmd), file ?? 'command line');
    const s = await train(o);
    if (s.stoppedBySignal) process.exitCode = s.stoppedBySignal === 'SIGINT' ? 130 : 143;
    else
      process.stdout.write(
        `trained ${s.epochs} epochs (${s.iterations} iterations), best dev rsum ${s.bestRsum.toFixed(1)}; checkpoints and report.html in ${s.runDir}\n`,
      );
  });
}
