// `vsl export model.h5 -o model.pth.tar`: a vsl checkpoint (or any model file vsl reads) as a torch zip
// checkpoint in the reference's own layout (src/io/torchExport.ts), so that the reference's scripts (evalrank)
// and PyTorch load it. The weights are checked against the model their options describe before anything is
// written; the file is written to a temporary name, read back and compared, then renamed.
import type { Command } from 'commander';
import { VslError } from '../util/errors.js';
import { activeBackend, selectBackend } from '../ops/backend.js';
import { buildModel, readModelFile } from '../eval/loadModel.js';
import { MODEL_PARTS } from '../io/sgrafCheckpoint.js';
import { writeTorchCheckpoint, type ExportTensor, type ReferenceCheckpoint } from '../io/torchExport.js';
import { referenceOpt } from '../train/referenceOpt.js';

export interface ExportCliOptions {
  output: string;
}

function sameData(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/** The action of `vsl export`: returns what goes to stdout. */
export async function runExport(input: string, o: ExportCliOptions): Promise<string> {
  if (!o.output) throw new VslError('-o/--output: expected the .pth.tar file to write');
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
      "write a vsl checkpoint as a torch .pth.tar in the reference's layout (for its evalrank and for PyTorch)",
    )
    .argument('<input>', 'the checkpoint: a vsl .h5 (or any model file vsl reads)')
    .requiredOption('-o, --output <file.pth.tar>', 'the torch checkpoint to write')
    .action(async (input: string, o: ExportCliOptions) => {
      process.stdout.write(await runExport(input, o));
    });
}
