// One pino logger for the whole process. Logs go to stderr so that stdout stays for results (tables, --json).
// Synchronous writes: long tf computations block the event loop, and async writes would hold lines back.
//
// Two formats: JSON lines (for files, pipes and CI: one record a line, every field kept) and pretty (for a
// person at a terminal: time, level, the message and the record's fields as key=value, no JSON). The default
// follows isInteractive(stderr); `--log-format` overrides it. The choice is also put in VSL_LOG_FORMAT so that
// worker threads started afterwards (which inherit the environment, not the logger) write the same format.
import pino, { type Logger } from 'pino';
import PinoPretty from 'pino-pretty';
import { isInteractive } from './terminal.js';
import { anyToString } from './errors.js';

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const RECORD_KEYS = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

function scalar(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  return String(v);
}

/** A record's own fields as `key=value` (nested objects flattened with dots, arrays joined with commas). */
export function fieldsText(rec: Record<string, unknown>, prefix = ''): string {
  const out: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (!prefix && RECORD_KEYS.has(k)) continue;
    const key = prefix + k;
    if (Array.isArray(v)) out.push(`${key}=${v.map(scalar).join(',')}`);
    else if (typeof v === 'object' && v !== null) {
      const inner = fieldsText(v as Record<string, unknown>, `${key}.`);
      if (inner) out.push(inner);
    } else out.push(`${key}=${scalar(v)}`);
  }
  return out.join(' ');
}

/** The pretty stream: `[12:04:31] INFO: message  key=value ...`, written synchronously to fd 2. */
function prettyStream(colorize = process.stderr.isTTY === true): PinoPretty.PrettyStream {
  return PinoPretty({
    destination: 2,
    sync: true,
    colorize,
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname',
    hideObject: true,
    messageFormat: (rec, messageKey) => {
      const fields = fieldsText(rec);
      const msg = anyToString(rec[messageKey] ?? '');
      return fields ? `${msg}  ${fields}` : msg;
    },
  });
}

export function defaultLogFormat(
  env: Record<string, string | undefined> = process.env,
  stream: { isTTY?: boolean } = process.stderr,
): LogFormat {
  const f = env.VSL_LOG_FORMAT;
  if (f === 'json' || f === 'pretty') return f;
  return isInteractive(stream, env) ? 'pretty' : 'json';
}

let format: LogFormat = defaultLogFormat();

function make(level: string, f: LogFormat): Logger {
  const dest = f === 'pretty' ? prettyStream() : pino.destination({ dest: 2, sync: true });
  return pino({ level, base: undefined }, dest);
}

let current: Logger = make(process.env.VSL_LOG_LEVEL ?? 'info', format);

export function log(): Logger {
  return current;
}

/** Re-create the logger (level, and optionally format); called once by the CLI after parsing its options. */
export function configureLog(level: string, f: LogFormat = format): void {
  format = f;
  process.env.VSL_LOG_FORMAT = f;
  current = make(level, f);
}

/** Re-create the logger at a new level, same format (the environment is left alone: tests call this). */
export function setLogLevel(level: string): void {
  current = make(level, format);
}
