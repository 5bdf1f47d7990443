// What `vsl train` shows on stderr while an epoch runs: on an interactive terminal one cli-progress bar per
// epoch (steps done/total, running mean loss, ETA); otherwise (a pipe, a file, CI) the plain log line every
// log_step, as before. train.log is written by the loop itself and does not depend on this module.
import cliProgress from 'cli-progress';
import { log } from '../util/log.js';
import { isInteractive } from '../util/terminal.js';

/** The state of the epoch after one training step. */
export interface StepStatus {
  epoch: number;
  /** 0-based index of the step just done */
  step: number;
  /** steps in the epoch */
  steps: number;
  loss: number;
  lossAvg: number;
  hinge: number;
  semantic: number;
  lr: number;
  /** seconds of the last step */
  secondsPerStep: number;
  /** estimated seconds left in the epoch */
  etaSeconds: number;
}

/** The part of a stream the bar needs (process.stderr, or a fake in the tests). */
interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): boolean;
}

/** A bar only where someone watches it redraw (isInteractive), and not at log level silent. */
export function useProgressBar(
  stream: { isTTY?: boolean },
  env: Record<string, string | undefined>,
  logLevel: string,
): boolean {
  return isInteractive(stream, env) && logLevel !== 'silent';
}

/** The plain stderr line of a logged step (unchanged from before the bar existed). */
export function stepLine(s: StepStatus): string {
  return (
    `epoch ${s.epoch} [${s.step + 1}/${s.steps}] loss ${s.loss.toFixed(3)} (avg ${s.lossAvg.toFixed(3)}) ` +
    `hinge ${s.hinge.toFixed(3)} vsl ${s.semantic.toFixed(3)} lr ${s.lr.toExponential(1)} ` +
    `${s.secondsPerStep.toFixed(2)} s/step, epoch ETA ${s.etaSeconds.toFixed(0)} s`
  );
}

function formatEta(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export interface TrainProgress {
  /** Whether a bar is used (else plain lines). */
  readonly bar: boolean;
  /** An epoch starts (or resumes) with `done` of `steps` steps already done. */
  begin(epoch: number, steps: number, done: number): void;
  /** After every step; `logNow` marks a log_step (a plain line when no bar is shown). */
  step(s: StepStatus, logNow: boolean): void;
  /**
   * Take the bar down (its last state stays on screen as a line) before anything else writes to stderr:
   * pino writes synchronously to fd 2 and would land in the middle of the bar's line. Idempotent.
   */
  stop(): void;
  /** Redraw the bar stopped by stop() if its epoch is unfinished (after a mid-epoch validation). */
  resume(): void;
}

export interface TrainProgressOptions {
  stream?: ProgressStream;
  env?: Record<string, string | undefined>;
  logLevel?: string;
  /** Where plain lines go (default: log().info). */
  line?: (msg: string) => void;
}

export function trainProgress(o: TrainProgressOptions = {}): TrainProgress {
  const stream = o.stream ?? process.stderr;
  const line = o.line ?? ((msg: string) => log().info(msg));
  const useBar = useProgressBar(stream, o.env ?? process.env, o.logLevel ?? log().level);
  if (!useBar) {
    return {
      bar: false,
      begin: () => {},
      step: (s, logNow) => {
        if (logNow) line(stepLine(s));
      },
      stop: () => {},
      resume: () => {},
    };
  }

  // The loop's own ETA (mean step time × steps left) is shown rather than cli-progress's, so that the bar
  // and the plain lines agree and a validation pause does not inflate it.
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as NodeJS.WritableStream,
      format: 'epoch {epoch} [{bar}] {value}/{total} | loss avg {lossAvg} | ETA {etaText}',
      barsize: 20,
      // Leave the terminal's cursor and line wrapping alone: a run killed where no handler runs (SIGKILL,
      // OOM) would otherwise leave them hidden / disabled in the user's shell.
      hideCursor: false,
      linewrap: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let state: { epoch: number; steps: number; done: number; payload: Record<string, string> } | null = null;
  let shown = false;
  const show = () => {
    if (!state || state.done >= state.steps) return; // nothing left to show progress of
    bar.start(state.steps, state.done, { ...state.payload });
    shown = true;
  };
  const stop = () => {
    if (!shown) return;
    bar.stop();
    shown = false;
  };
  return {
    bar: true,
    begin(epoch, steps, done) {
      stop();
      state = { epoch, steps, done, payload: { epoch: String(epoch), lossAvg: '-', etaText: '?' } };
      show();
    },
    step(s, logNow) {
      if (state) {
        state.done = s.step + 1;
        state.payload = { epoch: String(s.epoch), lossAvg: s.lossAvg.toFixed(3), etaText: formatEta(s.etaSeconds) };
      }
      if (shown) bar.update(s.step + 1, state!.payload);
      else if (logNow) line(stepLine(s)); // the bar was taken down (e.g. by a signal): say it in a line
    },
    stop,
    resume() {
      if (!shown) show();
    },
  };
}
