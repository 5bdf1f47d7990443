// One pino logger for the whole process. Logs go to stderr so that stdout stays for results (tables, --json).
import pino, { type Logger } from 'pino';

let current: Logger = pino({ level: process.env.VSL_LOG_LEVEL ?? 'info', base: undefined }, pino.destination(2));

export function log(): Logger {
  return current;
}

/** Re-create the logger at a new level; called once by the CLI after parsing --log-level. */
export function setLogLevel(level: string): void {
  current = pino({ level, base: undefined }, pino.destination(2));
}
