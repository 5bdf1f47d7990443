// Queries run one at a time (each already uses every score worker), in arrival order, with a bounded number
// waiting: past it a request is turned away at once (503) instead of piling up in memory. A request whose client
// has gone is dropped from the line before it runs; one already running finishes and its answer is discarded.

/** The line is full: the server answers 503. */
export class QueueFull extends Error {}
/** The client left while its query waited. */
export class QueueAborted extends Error {}

interface Waiting {
  run: () => void;
  reject: (e: Error) => void;
}

export class JobQueue {
  private busy = false;
  private readonly line: Waiting[] = [];

  constructor(readonly maxWaiting: number) {}

  get waiting(): number {
    return this.line.length;
  }

  /** Run `job` when its turn comes; rejects with QueueFull, or QueueAborted when `signal` aborts first. */
  run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(new QueueAborted('the client left'));
    if (!this.busy) return this.start(job);
    if (this.line.length >= this.maxWaiting)
      return Promise.reject(new QueueFull(`${this.line.length} queries are waiting; try again shortly`));
    return new Promise<T>((resolve, reject) => {
      const entry: Waiting = {
        run: () => {
          signal?.removeEventListener('abort', onAbort);
          this.start(job).then(resolve, reject);
        },
        reject,
      };
      const onAbort = () => {
        const k = this.line.indexOf(entry);
        if (k >= 0) this.line.splice(k, 1);
        reject(new QueueAborted('the client left'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.line.push(entry);
    });
  }

  private async start<T>(job: () => Promise<T>): Promise<T> {
    this.busy = true;
    try {
      return await job();
    } finally {
      this.busy = false;
      this.line.shift()?.run();
    }
  }

  /** Turn away everything still waiting (the server is closing). */
  drain(e: Error): void {
    for (const w of this.line.splice(0)) w.reject(e);
  }
}
