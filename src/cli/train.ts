// `vsl train`: options as the reference's opts.py (kebab-case), a --config JSON file, flags override it. The
// flags, their parsers and help (with defaults) come from the one options table of train/options.ts.
import { Command, Option } from 'commander';
import { z } from 'zod';
import { readConfigFile, resolveOptions, TRAIN_OPTION_TABLE } from '../train/options.js';
import type { OptionSpec } from '../util/optionSpec.js';
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

/** The schema under its default/optional wrappers. */
function inner(s: z.ZodTypeAny): z.ZodTypeAny {
  // instanceof narrows to ZodDefault<any> / ZodOptional<any>: name the wrapped schema's type
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional)
    s = (s as z.ZodDefault<z.ZodTypeAny> | z.ZodOptional<z.ZodTypeAny>)._def.innerType;
  return s;
}

/** The commander option of one table entry: its parser (integer, number) or choices, and its default in the help. */
function flagOf(spec: OptionSpec): Option {
  const r = spec.schema.safeParse(undefined);
  const shown =
    r.success && r.data !== undefined && !spec.flag.startsWith('--no-') ? ` (default: ${JSON.stringify(r.data)})` : '';
  const o = new Option(spec.flag, spec.help + shown);
  const s = inner(spec.schema);
  if (s instanceof z.ZodEnum) o.choices(s.options as string[]);
  else if (s instanceof z.ZodNumber) o.argParser(s.isInt ? int : num);
  else if (s instanceof z.ZodLiteral && typeof s.value === 'number') o.argParser(int);
  return o;
}

/** Commander attribute names that differ from the table's keys: --no-imgnorm sets imgnorm = false. */
const NEGATED: Record<string, string> = { imgnorm: 'noImgnorm', txtnorm: 'noTxtnorm' };

function addTrainOptions(cmd: Command): Command {
  cmd.option('--config <file>', 'JSON file of options (names as below, camelCase); flags override it');
  for (const [key, spec] of Object.entries(TRAIN_OPTION_TABLE)) {
    if (key === 'numLayers') continue; // one value only: a config key, not worth a flag
    cmd.addOption(flagOf(spec));
    if (key === 'dataName') cmd.addOption(new Option('--data <name>', 'alias of --data-name').hideHelp());
  }
  return cmd;
}

/** The options a user gave on the command line (not commander's defaults), in schema names. */
function flagsOf(cmd: Command): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cmd.opts())) {
    if (k === 'config' || cmd.getOptionValueSource(k) !== 'cli') continue;
    if (NEGATED[k]) out[NEGATED[k]] = !v;
    else out[k === 'data' ? 'dataName' : k] = v;
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
