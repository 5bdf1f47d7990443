// The `vsl` command line: a thin layer that parses options and calls into data / model / train / eval.
import { Command, CommanderError, Option } from 'commander';
import { VslError } from '../util/errors.js';
import { ONNX_DEVICES, setOnnxDevice, type OnnxDevice } from '../runtime/onnx/device.js';
import { configureLog, defaultLogFormat, LOG_FORMATS, type LogFormat } from '../util/log.js';
// Each subcommand lives in its own module and exports `register(program)`.
// (register-commands: keep one import per line so that parallel edits do not collide)
import { register as registerEval } from './eval.js';
import { register as registerEvalOverall } from './evalOverall.js';
import { register as registerConvert } from './convert.js';
import { register as registerExport } from './export.js';
import { register as registerVocab } from './vocab.js';
import { register as registerSynth } from './synth.js';
import { register as registerTrain } from './train.js';
import { register as registerDemo } from './demo.js';
import { register as registerReport } from './report.js';
import { register as registerQuery } from './query.js';
import { register as registerIndex } from './buildIndex.js';
import { register as registerServe } from './serve.js';

export function buildProgram(): Command {
  const program = new Command('vsl')
    .description('SGR / SAF image-text matching with the Visual Semantic Loss, on SCAN precomp features')
    .option('--log-level <level>', 'pino log level: fatal, error, warn, info, debug, trace', 'info')
    .addOption(
      new Option(
        '--log-format <format>',
        'stderr logs: json lines, or pretty lines (default: pretty on a terminal)',
      ).choices(LOG_FORMATS),
    )
    .addOption(
      new Option(
        '--device <device>',
        "the onnx engine's ONNX Runtime execution provider: cpu, or cuda (onnxruntime-node installed with CUDA: README)",
      ).choices(ONNX_DEVICES),
    )
    .showHelpAfterError()
    .hook('preAction', (cmd) => {
      const o = cmd.opts();
      configureLog(String(o.logLevel), (o.logFormat as LogFormat | undefined) ?? defaultLogFormat());
      if (o.device) setOnnxDevice(o.device as OnnxDevice);
    });
  // register-calls
  registerEval(program);
  registerEvalOverall(program);
  registerConvert(program);
  registerExport(program);
  registerVocab(program);
  registerSynth(program);
  registerTrain(program);
  registerDemo(program);
  registerReport(program);
  registerQuery(program);
  registerIndex(program);
  registerServe(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message (or the help); keep its exit code.
      process.exitCode = e.exitCode;
      return;
    }
    if (e instanceof VslError) {
      process.stderr.write(`vsl: ${e.message}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    throw e;
  }
}
