// What `vsl query` prints: a ranked list a person reads at a terminal, or one JSON object (--json).
import type { ImageResult, Retrieval, SentenceResult } from './retrieval.js';

function head(r: Retrieval, what: string): string {
  return `${what} of ${r.split.dataName}/${r.split.split} (model ${r.model.path}, ${r.model.config.module})`;
}

export function sentencesText(r: Retrieval, results: readonly SentenceResult[]): string {
  const out: string[] = [];
  for (const q of results) {
    out.push(`query: "${q.text}"`);
    out.push(
      `  tokens: ${q.tokens.join(' ')}${q.unknown.length ? `   (not in the vocabulary: ${q.unknown.join(', ')})` : ''}`,
    );
    out.push(`  top ${q.hits.length} ${head(r, `of ${r.nImages} images`)}`);
    const gt = q.groundTruth;
    if (gt)
      out.push(
        `  the split's caption ${gt.caption}: its image ${gt.image} ranks ${gt.rank} (score ${gt.score.toFixed(4)}); * = its image`,
      );
    for (const h of q.hits) {
      out.push(
        `  ${String(h.rank).padStart(3)}. image ${h.image}  score ${h.score.toFixed(4)}${h.groundTruth ? '  *' : ''}`,
      );
      for (const c of h.captions) out.push(`         ${c}`);
    }
    out.push('');
  }
  return out.join('\n');
}

export function imageText(r: Retrieval, q: ImageResult): string {
  const out = [`image ${q.image} of ${r.split.dataName}/${r.split.split}; its captions (the ground truth):`];
  for (const c of q.captions) out.push(`         [${c.caption}] ${c.text}`);
  out.push(
    `  top ${q.hits.length} ${head(r, `of ${r.split.nCaptions} captions`)}; * = ground truth, the first at rank ${q.firstGroundTruthRank}`,
  );
  for (const h of q.hits) {
    out.push(
      `  ${String(h.rank).padStart(3)}. ${h.groundTruth ? '*' : ' '} caption ${h.caption} (image ${h.image})  score ${h.score.toFixed(4)}  ${h.text}`,
    );
  }
  return out.join('\n') + '\n\n';
}

export function queryJson(r: Retrieval, result: { sentences: SentenceResult[] } | { image: ImageResult }) {
  return {
    model: { path: r.model.path, module: r.model.config.module, source: r.model.source, epoch: r.model.epoch },
    data: { dataPath: r.split.dataPath, dataName: r.split.dataName, split: r.split.split, vocab: r.vocabFile },
    index: r.index?.dir ?? null,
    nImages: r.nImages,
    nCaptions: r.split.nCaptions,
    ...result,
    backend: r.backend,
    engine: r.engine ?? null,
    seconds: r.seconds,
  };
}
