// `vsl export model.h5 -o model.pth.tar`: a vsl checkpoint (or any model file vsl reads) as a torch zip
// checkpoint in the reference's own layout (src/io/torchExport.ts), so that the reference's scripts (evalrank)
// and PyTorch load it. The weights are checked against the model their options describe before anything is
// written; the file is written to a temporary name, read back and compared, then renamed.
// `vsl export --format onnx model -o DIR`: the model's image, caption and score graphs for ONNX Runtime, with
// manifest.json (runtime/onnx/exportDir.ts) and a copy of the vocabulary the caption graph's token ids index.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { sha256File } from '../util/atomicFile.js';
import { vslVersion } from '../util/version.js';
import { resolveVocabFile } from '../eval/vocabFile.js';
import { OPSET } from '../runtime/onnx/builder.js';
import { exportGraphs } from '../runtime/onnx/graphs.js';
import { writeOnnxExport } from '../runtime/onnx/exportDir.js';
import { VslError } from '../util/errors.js';
import { activeBackend, selectBackend } from '../ops/backend.js';
import { buildModel, readModelFile } from '../eval/loadModel.js';
import { MODEL_PARTS } from '../io/sgrafCheckpoint.js';
import { writeTorchCheckpoint, type ExportTensor, type ReferenceCheckpoint } from '../io/torchExport.js';
import { referenceOpt } from '../train/referenceOpt.js';

export interface ExportCliOptions {
  output: string;
  /** pth (default) or onnx */
  format?: string;
  /** onnx: folder holding <data_name>_vocab.json, or the .json file (default: as vsl eval) */
  vocabPath?: string;
  /** onnx: element type of the caption graph's token ids (int32) */
  idType?: string;
}

function sameData(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/** `vsl export --format onnx`: the graphs, manifest.json and the vocabulary in the folder o.output. */
async function runExportOnnx(input: string, o: ExportCliOptions): Promise<string> {
  const idType = o.idType ?? 'int32';
  if (idType !== 'int32' && idType !== 'int64')
    throw new VslError(`--id-type: expected int32 or int64, found ${JSON.stringify(idType)}`);
  if (!activeBackend()) await selectBackend('cpu'); // host-side copy only: no compute
  const file = await readModelFile(input);
  const model = buildModel(file);
  try {
    const c = model.config;
    const { dataName, dataPath, vocabPath } = file.options.data;
    const vocabFile = resolveVocabFile(dataName, o.vocabPath, vocabPath, dataPath);
    // graphs.ts needs the onnx packages only (no ORT): exporting works where ORT does not load
    const graphs = exportGraphs(model.reg, c, { idType, source: input });
    const vocabName = path.basename(vocabFile);
    const files = writeOnnxExport(
      o.output,
      graphs,
      {
        vsl: vslVersion(),
        checkpoint: { file: path.basename(input), sha256: sha256File(input), source: file.source, epoch: model.epoch },
        model: { module: c.module, config: c },
        vocab: { file: vocabName, sha256: sha256File(vocabFile), dataName },
        notes: [
          'caption ids: the vocabulary indices of <start>, the words (unknown: <unk>), <end>; pad rows to Lp with 0',
          "score: feed the image graph's outputs and the caption graph's outputs (words are zero past each length)",
          'sims[i][c] = score(image i, caption c), in (0, 1)',
        ],
      },
      { [vocabName]: fs.readFileSync(vocabFile) },
    );
    return `${input} (${file.source}, ${c.module}, epoch ${model.epoch}) -> ${o.output}: ${files.map((f) => path.basename(f)).join(', ')} (ONNX opset ${OPSET})\n`;
  } finally {
    model.reg.dispose();
  }
}

/** The action of `vsl export`: returns what goes to stdout. */
export async function runExport(input: string, o: ExportCliOptions): Promise<string> {
  const format = o.format ?? 'pth';
  if (format !== 'pth' && format !== 'onnx')
    throw new VslError(`--format: expected pth or onnx, found ${JSON.stringify(format)}`);
  if (!o.output)
    throw new VslError(`-o/--output: expected the ${format === 'onnx' ? 'folder' : '.pth.tar file'} to write`);
  if (format === 'onnx') return runExportOnnx(input, o);
  if (!activeBackend()) await selectBackend('cpu'); // host-side copy only: no compute
  const file = await readModelFile(input);
  const model = buildModel(file);
  try {
    const parts = MODEL_PARTS.map(() => new Map<string, ExportTensor>()) as ReferenceCheckpoint['model'];
    const flat = new Map<string, ExportTensor>();
    for (const name of model.reg.names()) {
      const a = file.arrays.get(name)!;
      const count = model.reg.entries.get(name)!.spec.role === 'bn-count';
      const data = count
        ? a.data instanceof BigInt64Array
          ? a.data
          : BigInt64Array.from(a.data as ArrayLike<number>, (v) => BigInt(Math.round(Number(v))))
        : a.data instanceof Float32Array
          ? a.data
          : Float32Array.from(a.data as ArrayLike<number>, Number);
      const t = { shape: [...a.shape], data };
      const dot = name.indexOf('.');
      parts[MODEL_PARTS.indexOf(name.slice(0, dot) as (typeof MODEL_PARTS)[number])].set(name.slice(dot + 1), t);
      flat.set(name, t);
    }
    const { referenceOpt: ref, ...train } = model.options.train;
    const ck: ReferenceCheckpoint = {
      model: parts,
      opt: referenceOpt({
        model: model.config,
        data: model.options.data,
        train,
        referenceOpt: ref as Record<string, unknown> | undefined,
      }),
      epoch: Math.max(0, Math.round(model.epoch)),
      eiters: Math.max(0, Math.round(model.iteration)),
      bestRsum: model.bestRsum,
    };
    await writeTorchCheckpoint(o.output, ck, async (tmp) => {
      const back = await readModelFile(tmp);
      for (const [k, t] of flat) {
        const b = back.arrays.get(k);
        if (!b || b.shape.join(',') !== t.shape.join(',') || !sameData(b.data, t.data))
          throw new Error(`${k} does not read back as written`);
      }
      if (back.arrays.size !== flat.size)
        throw new Error(`${back.arrays.size} tensors read back, ${flat.size} written`);
    });
    const c = model.config;
    return `${input} (${file.source}, ${c.module}, vocab ${c.vocabSize}, ${model.reg.count()} parameters, epoch ${ck.epoch}) -> ${o.output} (torch zip, the reference's checkpoint layout)\n`;
  } finally {
    model.reg.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('export')
    .description(
      "write a vsl checkpoint as a torch .pth.tar in the reference's layout (for its evalrank and for PyTorch), " +
        'or with --format onnx as image.onnx, caption.onnx, score.onnx and manifest.json (for ONNX Runtime)',
    )
    .argument('<input>', 'the checkpoint: a vsl .h5 (or any model file vsl reads)')
    .requiredOption('-o, --output <path>', 'the torch checkpoint to write (pth), or the folder to write (onnx)')
    .option('--format <name>', 'pth (a torch .pth.tar) or onnx (a folder of ONNX graphs)', 'pth')
    .option(
      '--vocab-path <dir>',
      'onnx: folder holding <data_name>_vocab.json, or the .json file (default: as vsl eval)',
    )
    .option('--id-type <type>', "onnx: element type of the caption graph's token ids, int32 or int64", 'int32')
    .action(async (input: string, o: ExportCliOptions) => {
      process.stdout.write(await runExport(input, o));
    });
}
