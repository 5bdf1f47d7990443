// `vsl index`: encode a split's images once with a checkpoint and keep them as an index (imageIndex.ts). The
// images are encoded as `vsl query` and `vsl eval` encode them (the same batches, counted from image 0), so the
// index gives the same scores as encoding again; they are written as they come, a batch at a time.
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { BackendChoice } from '../ops/backend.js';
import { IMAGE_ENCODE_BATCH } from '../eval/scoreSplit.js';
import { sha256File } from '../util/atomicFile.js';
import { VslError } from '../util/errors.js';
import { log } from '../util/log.js';
import { vslVersion } from '../util/version.js';
import { createIndexWriter, type IndexManifest } from './imageIndex.js';
import { captionsSha256, Retrieval } from './retrieval.js';

export interface BuildIndexOptions {
  modelPath: string;
  dataPath?: string;
  vocabPath?: string;
  dataName?: string;
  split: string;
  out: string;
  backend?: BackendChoice;
  /** Asked between batches; true = stop, leaving nothing behind. */
  shouldStop?: () => boolean;
}

/** Thrown when shouldStop ended the build (nothing was written). */
class IndexStopped extends VslError {}

export async function buildIndex(o: BuildIndexOptions): Promise<IndexManifest> {
  const t0 = performance.now();
  const r = await Retrieval.open({ ...o, quiet: true });
  try {
    const { model, split, nImages } = r;
    const writer = createIndexWriter(
      o.out,
      {
        vsl: vslVersion(),
        created: new Date().toISOString(),
        encodedWith: `tfjs-${r.backend}`,
        model: {
          file: path.resolve(o.modelPath),
          sha256: sha256File(o.modelPath),
          module: model.config.module,
          source: model.source,
          epoch: model.epoch,
          config: { ...model.config },
        },
        data: {
          dataPath: path.resolve(split.dataPath),
          dataName: split.dataName,
          split: split.split,
          vocab: path.resolve(r.vocabFile),
          captionsSha256: captionsSha256(split.captions),
          nImages,
          nCaptions: split.nCaptions,
        },
      },
      model.config,
    );
    log().info(
      `indexing ${nImages} images of ${split.dataName}/${split.split} with ${model.config.module} (${o.modelPath}) into ${o.out}`,
    );
    try {
      let lastLog = performance.now();
      for (let s = 0; s < nImages; s += IMAGE_ENCODE_BATCH) {
        if (o.shouldStop?.()) throw new IndexStopped(`stopped: no index written to ${o.out}`, 130);
        const e = Math.min(nImages, s + IMAGE_ENCODE_BATCH);
        writer.append(r.encodeImageRange(s, e));
        if (performance.now() - lastLog > 10_000) {
          lastLog = performance.now();
          log().info(`encoded ${e} of ${nImages} images`);
        }
        await yieldToLoop(); // a signal handler may run
      }
    } catch (e) {
      writer.abort();
      throw e;
    }
    const seconds = (performance.now() - t0) / 1000;
    return writer.finish(seconds);
  } finally {
    await r.close();
  }
}
