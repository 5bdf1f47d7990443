// One pino logger for the whole process. Logs go to stderr so that stdout stays for results (tables, --json).
// Synchronous writes: long tf computations block the event loop, and async writes would hold lines back.
import pino, { type Logger } from 'pino';

let current: Logger = pino(
  { level: process.env.VSL_LOG_LEVEL ?? 'info', base: undefined },
  pino.destination({ dest: 2, sync: true }),
);

export function log(): Logger {
  return current;
}

/** Re-create the logger at a new level; called once by the CLI after parsing --log-level. */
export function setLogLevel(level: string): void {
  current = pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }));
}
