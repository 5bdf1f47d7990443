// The three inference graphs of a vsl model, assembled from the blocks (encoderGraph.ts, similarityGraph.ts,
// reasoningGraph.ts) with their inputs and outputs named here (the runner feeds and reads these names;
// `vsl export --format onnx` reads them back from the graphs into its manifest):
//   image:   images (nImg, 36, imgDim) float32 -> regions (nImg, 36, D), vGlobal (nImg, D)
//   caption: ids (nCap, Lp) int32|int64, lengths (nCap) int32 -> words (nCap, Lp, D), tGlobal (nCap, D)
//   score:   regions, vGlobal, words, tGlobal, lengths -> sims (nImg, nCap)
// Each graph's doc_string holds the model's config (JSON), so that a graph file says what it was made from.
import type { ModelConfig } from '../../model/config.js';
import { REGIONS } from '../../model/config.js';
import type { ParamRegistry } from '../../model/params.js';
import { GraphBuilder } from './builder.js';
import { captionEncoder, imageEncoder, textSA, visualSA } from './encoderGraph.js';
import { HostWeights } from './hostWeights.js';
import { moduleGraph, scoreHead } from './reasoningGraph.js';
import { blockDims, globalVectors, localVectors, nodeMasks, similarityNodes } from './similarityGraph.js';

export type GraphName = 'image' | 'caption' | 'score';

export interface OnnxGraphs {
  config: ModelConfig;
  image: Uint8Array;
  caption: Uint8Array;
  score: Uint8Array;
}

export interface ExportOptions {
  /** element type of the caption graph's token ids (default int32, as vsl's token batches) */
  idType?: 'int32' | 'int64';
}

const doc = (w: HostWeights, graph: GraphName) => JSON.stringify({ producer: 'vsl', graph, config: w.config });

function imageGraph(w: HostWeights): Uint8Array {
  const b = new GraphBuilder('vsl_image');
  const { imgDim, embedSize: D } = w.config;
  const images = b.input('images', 'float32', ['nImg', REGIONS, imgDim]);
  const regions = imageEncoder(b, w, images);
  const vGlobal = visualSA(b, w, regions);
  b.rename(regions, 'regions');
  b.rename(vGlobal, 'vGlobal');
  b.output('regions', 'float32', ['nImg', REGIONS, D]);
  b.output('vGlobal', 'float32', ['nImg', D]);
  return b.bytes(doc(w, 'image'));
}

function captionGraph(w: HostWeights, o: ExportOptions = {}): Uint8Array {
  const b = new GraphBuilder('vsl_caption');
  const D = w.config.embedSize;
  const ids = b.input('ids', o.idType ?? 'int32', ['nCap', 'Lp']);
  const lengths = b.input('lengths', 'int32', ['nCap']);
  const { words, valid } = captionEncoder(b, w, ids, lengths);
  const tGlobal = textSA(b, w, words, lengths, valid);
  b.rename(words, 'words');
  b.rename(tGlobal, 'tGlobal');
  b.output('words', 'float32', ['nCap', 'Lp', D]);
  b.output('tGlobal', 'float32', ['nCap', D]);
  return b.bytes(doc(w, 'caption'));
}

/** The score graph; the words must be zero past each caption's length (as the caption graph writes them). */
function scoreGraph(w: HostWeights): Uint8Array {
  const b = new GraphBuilder('vsl_score');
  const D = w.config.embedSize;
  const regions = b.input('regions', 'float32', ['nImg', REGIONS, D]);
  const vGlobal = b.input('vGlobal', 'float32', ['nImg', D]);
  const words = b.input('words', 'float32', ['nCap', 'Lp', D]);
  const tGlobal = b.input('tGlobal', 'float32', ['nCap', D]);
  const lengths = b.input('lengths', 'int32', ['nCap']);
  const d = blockDims(b, regions, words);
  const masks = nodeMasks(b, lengths, d);
  const local = localVectors(b, w, words, regions, d);
  const glob = globalVectors(b, w, vGlobal, tGlobal);
  const nodes = similarityNodes(b, w.config.simDim, local, glob, d);
  const vec = moduleGraph(w.config.module)(b, w, nodes, masks);
  scoreHead(b, w, vec, d, 'sims');
  b.output('sims', 'float32', ['nImg', 'nCap']);
  return b.bytes(doc(w, 'score'));
}

/**
 * The three graphs of a model (any checkpoint vsl reads: see eval/loadModel.ts). `source` names the model in
 * errors; a parameter that cannot be exported is named (hostWeights.ts).
 */
export function exportGraphs(
  reg: ParamRegistry,
  config: ModelConfig = reg.config,
  o: ExportOptions & { source?: string } = {},
): OnnxGraphs {
  const w = HostWeights.fromRegistry(reg, config, o.source);
  return { config, image: imageGraph(w), caption: captionGraph(w, o), score: scoreGraph(w) };
}
