// `vsl serve`: a retrieval page and its JSON API for one checkpoint and split (src/serve/). The image side is
// loaded once (from --index, else encoded at start), the score workers start once, the split's captions are
// encoded in the background for image queries; then the address goes to stdout. SIGINT / SIGTERM close the
// server (the running query may answer) and exit 0; a second signal exits at once.
import type { Command } from 'commander';
import type { BackendChoice } from '../ops/backend.js';
import { Retrieval } from '../query/retrieval.js';
import { DEFAULT_ENGINE, engineNames } from '../query/engines.js';
import { JobQueue } from '../serve/queue.js';
import { openPictures } from '../serve/pictures.js';
import { startServer } from '../serve/server.js';
import { StopOnSignal } from '../eval/stop.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { parseIntOption } from './eval.js';

interface ServeCliOptions {
  index?: string;
  model?: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
  split?: string;
  host: string;
  port: string;
  images?: string;
  imageNames?: string;
  workers?: string;
  backend?: string;
  engine?: string;
  maxWaiting: string;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

async function runServe(o: ServeCliOptions): Promise<void> {
  if (!o.index && !o.model) throw new VslError('--index: expected an index written by vsl index (or --model)');
  const port = parseIntOption('--port', o.port, 0);
  if (port > 65535) throw new VslError(`--port: expected a port from 0 to 65535, found ${port}`);
  const maxWaiting = parseIntOption('--max-waiting', o.maxWaiting, 0);
  // installed first: a signal while loading stops before listening
  let signalled: NodeJS.Signals | null = null;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    const h = (s: NodeJS.Signals) => resolve((signalled ??= s));
    process.once('SIGINT', h);
    process.once('SIGTERM', h);
  });
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
    offMainThread: true,
    quiet: true,
  });
  let closing = false;
  try {
    const pictures = openPictures(o.images, o.imageNames, r.nImages);
    if (!o.index) log().info(`no --index: encoding the ${r.nImages} images of the split first`);
    await r.startScorer();
    if (signalled) return;
    const server = await startServer(
      { retrieval: r, queue: new JobQueue(maxWaiting), pictures },
      { host: o.host, port },
    );
    if (!LOOPBACK.test(o.host))
      log().warn(`--host ${o.host}: the page and its API are open to every machine that reaches this address`);
    process.stdout.write(
      `vsl serve: listening on ${server.url} (${r.split.dataName}/${r.split.split}: ${r.nImages} images, ` +
        `${r.model.config.module} ${r.model.path}, ${r.engine}${pictures.count ? `, ${pictures.count} pictures` : ''})\n`,
    );
    r.prepareImageQueries().then(
      () => log().info(`image queries ready: the split's ${r.split.nCaptions} captions are encoded`),
      (e: unknown) => {
        if (!closing) log().error(`encoding the split's captions failed: ${(e as Error).message}`);
      },
    );
    const sig = await signal;
    closing = true;
    const again = (s: NodeJS.Signals) => process.exit(StopOnSignal.exitCode(s));
    process.once('SIGINT', again);
    process.once('SIGTERM', again);
    log().info(`${sig}: closing the server (${sig} again exits at once)`);
    await server.close();
  } finally {
    closing = true;
    await r.close();
  }
}

export function register(program: Command): void {
  program
    .command('serve')
    .description(
      'a retrieval page and JSON API for a checkpoint and split: search the images with a sentence, click one for its captions ranked',
    )
    .option('--index <dir>', 'an image index written by vsl index (its checkpoint, data and split are the defaults)')
    .option('--model <file>', "checkpoint (default: the index's; it must be the one the index was built from)")
    .option('--data-path <dir>', "data path holding <data_name>/ (default: the index's)")
    .option('--vocab-path <dir>', "folder holding <data_name>_vocab.json, or the .json file (default: the index's)")
    .option('--data-name <name>', "data name (default: the index's)")
    .option('--split <name>', "split (default: the index's)")
    .option('--host <address>', 'address to listen on (other than loopback: open to the network)', '127.0.0.1')
    .option('--port <n>', 'port (0: any free one; the address is printed)', '8080')
    .option('--images <dir>', 'folder of the pictures (with --image-names)')
    .option('--image-names <file>', 'picture file names relative to --images, one per image row of the split')
    .option('--workers <n>', 'score worker threads (default: as vsl eval)')
    .option('--max-waiting <n>', 'queries that may wait while one runs; more are answered 503', '16')
    .option('--backend <name>', 'auto, tensorflow-gpu, tensorflow, wasm or cpu', 'auto')
    .option('--engine <name>', `scoring engine: ${engineNames().join(', ')}`, DEFAULT_ENGINE)
    .action(async (o: ServeCliOptions) => {
      await runServe(o);
    });
}
