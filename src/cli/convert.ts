// `vsl convert x.pth.tar -o x.h5`: a SGRAF/VSL PyTorch checkpoint (zip or legacy container; also a
// golden-style HDF5 with a weights/ group and opt_json) to vsl's HDF5 checkpoint (src/io/checkpoint.ts).
// The weights are checked against the model its options describe (missing/unexpected keys, shapes) before
// anything is written; options become { model, data: { dataName, dataPath, vocabPath }, train: { referenceOpt } };
// epoch, Eiters (iteration) and best_rsum are kept. No optimizer state (the reference saves none).
import type { Command } from 'commander';
import { VslError } from '../util/errors.js';
import { saveCheckpoint, type ArrayRecord } from '../io/checkpoint.js';
import { buildModel, readModelFile } from '../eval/loadModel.js';
import { activeBackend, selectBackend } from '../ops/backend.js';

export interface ConvertCliOptions {
  output: string;
}

/** The action of `vsl convert`: returns what goes to stdout. */
export async function runConvert(input: string, o: ConvertCliOptions): Promise<string> {
  if (!o.output) throw new VslError('-o/--output: expected the .h5 file to write');
  if (!activeBackend()) await selectBackend('cpu'); // host-side copy only: no compute
  const file = await readModelFile(input);
  const model = buildModel(file);
  try {
    // The file's own arrays, in state_dict order (the registry only validated them): int64 counters stay
    // exact (the registry keeps them as float32), float64 tensors become float32.
    const weights = new Map<string, ArrayRecord>();
    for (const name of model.reg.names()) {
      const a = file.arrays.get(name)!;
      const data =
        a.data instanceof BigInt64Array || a.data instanceof Float32Array
          ? a.data
          : model.reg.entries.get(name)!.spec.role === 'bn-count'
            ? BigInt64Array.from(a.data as ArrayLike<number>, (v) => BigInt(Math.round(Number(v))))
            : Float32Array.from(a.data as ArrayLike<number>);
      weights.set(name, { shape: [...a.shape], data });
    }
    await saveCheckpoint(o.output, {
      weights,
      options: { ...model.options, train: { ...model.options.train, convertedFrom: input, sourceFormat: file.source } },
      epoch: Math.max(0, Math.round(model.epoch)),
      iteration: Math.max(0, Math.round(model.iteration)),
      bestRsum: model.bestRsum,
    });
    const c = model.config;
    return `${input} (${file.source}, ${c.module}, vocab ${c.vocabSize}, ${model.reg.count()} parameters, epoch ${model.epoch}) -> ${o.output}\n`;
  } finally {
    model.reg.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('convert')
    .description("convert a SGRAF/VSL .pth.tar checkpoint (zip or legacy torch container) to vsl's HDF5 checkpoint")
    .argument('<input>', 'the .pth.tar file')
    .requiredOption('-o, --output <file.h5>', 'the HDF5 checkpoint to write')
    .action(async (input: string, o: ConvertCliOptions) => {
      process.stdout.write(await runConvert(input, o));
    });
}
