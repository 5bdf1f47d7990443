// SIGINT / SIGTERM during an evaluation: the first asks the scoring to finish the blocks in flight (they are kept)
// and stop; a second one exits at once (the kept blocks are on disk already).
import { log } from '../util/log.js';

export class StopOnSignal {
  requested: NodeJS.Signals | null = null;
  private readonly handler = (sig: NodeJS.Signals) => {
    if (this.requested) process.exit(sig === 'SIGINT' ? 130 : 143);
    this.requested = sig;
    this.beforeWarn();
    log().warn(`${sig}: finishing the blocks in flight, then stopping (${sig} again stops at once)`);
  };
  constructor(private readonly beforeWarn: () => void = () => {}) {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }
  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
  /** The exit code of a run stopped by `sig`: 128 + its number, as a shell reports it. */
  static exitCode(sig: NodeJS.Signals): number {
    return sig === 'SIGINT' ? 130 : 143;
  }
}
