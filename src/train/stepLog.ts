// What a training step leaves behind: running means of its losses and times, a train.log record every log_step,
// and the stderr progress (a bar on a TTY, else the same log_step lines), and each validation in metrics.jsonl.
import fs from 'node:fs';
import type pino from 'pino';
import type { EvalResult } from '../eval/metrics.js';
import { log } from '../util/log.js';
import { fileError } from '../util/errors.js';
import type { TrainProgress } from './progress.js';
import type { StepResult } from './step.js';
import type { SemanticLossKind } from '../loss/semantic.js';

class Meter {
  sum = 0;
  n = 0;
  val = 0;
  add(v: number) {
    this.val = v;
    this.sum += v;
    this.n += 1;
  }
  get avg() {
    return this.n ? this.sum / this.n : 0;
  }
}

/** How one epoch trains: its learning rate and which hinge and semantic terms run. */
export interface EpochPlan {
  epoch: number;
  steps: number;
  lr: number;
  maxViolation: boolean;
  semanticLoss: SemanticLossKind;
}

/** The meters of one epoch, and the records they produce. */
export class EpochLog {
  private readonly m = {
    loss: new Meter(),
    hinge: new Meter(),
    semantic: new Meter(),
    batch: new Meter(),
    data: new Meter(),
  };
  constructor(
    private readonly plan: EpochPlan,
    private readonly runLog: pino.Logger,
    private readonly progress: TrainProgress,
    private readonly logStep: number,
  ) {}

  /** The epoch's steps and seconds (all, and reading data), for train.log's epoch record. */
  summary(): { steps: number; seconds: number; dataSeconds: number } {
    return { steps: this.m.batch.n, seconds: this.m.batch.sum, dataSeconds: this.m.data.sum };
  }

  /** After step `step` (0-based) of the epoch, the run's `iteration`-th; times in seconds. */
  step(step: number, iteration: number, r: StepResult, batchSeconds: number, dataSeconds: number): void {
    const { m, plan } = this;
    m.loss.add(r.total);
    m.hinge.add(r.hinge);
    m.semantic.add(r.semantic);
    m.batch.add(batchSeconds);
    m.data.add(dataSeconds);
    const logNow = iteration % this.logStep === 0 || step === plan.steps - 1;
    if (logNow) {
      this.runLog.info(
        {
          epoch: plan.epoch,
          step,
          steps: plan.steps,
          iteration,
          lr: plan.lr,
          maxViolation: plan.maxViolation,
          semanticLoss: plan.semanticLoss,
          loss: r.total,
          lossAvg: m.loss.avg,
          hinge: r.hinge,
          hingeAvg: m.hinge.avg,
          semantic: r.semantic,
          semanticAvg: m.semantic.avg,
          gradNorm: r.gradNorm,
          batchTime: m.batch.val,
          dataTime: m.data.val,
        },
        'step',
      );
    }
    this.progress.step(
      {
        epoch: plan.epoch,
        step,
        steps: plan.steps,
        loss: r.total,
        lossAvg: m.loss.avg,
        hinge: r.hinge,
        semantic: r.semantic,
        lr: plan.lr,
        secondsPerStep: m.batch.val,
        etaSeconds: m.batch.avg * (plan.steps - step - 1),
      },
      logNow,
    );
  }
}

/** A validation's record: metrics.jsonl, train.log and one line on stderr. */
export function logValidation(
  runLog: pino.Logger,
  metricsFile: string,
  at: { epoch: number; iteration: number; where: string; seconds: number; weights?: string; threads?: number },
  r: EvalResult,
): void {
  const { epoch, iteration, where, seconds, weights, threads } = at;
  // weights: the sha256 of the model state validated, so that a resumed run can tell it already did this one
  const record = { epoch, iteration, where, i2t: r.i2t, t2i: r.t2i, rsum: r.rsum, seconds, threads, weights };
  try {
    fs.appendFileSync(metricsFile, JSON.stringify(record) + '\n');
  } catch (e) {
    throw fileError(metricsFile, e, 'write');
  }
  runLog.info(record, 'validation');
  log().info(
    `epoch ${at.epoch} ${at.where}: i2t R@1/5/10 ${r.i2t.r1.toFixed(1)}/${r.i2t.r5.toFixed(1)}/${r.i2t.r10.toFixed(1)}  ` +
      `t2i ${r.t2i.r1.toFixed(1)}/${r.t2i.r5.toFixed(1)}/${r.t2i.r10.toFixed(1)}  rsum ${r.rsum.toFixed(1)}`,
  );
}
