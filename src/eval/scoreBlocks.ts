// Score a list of grid blocks (shards.ts) with a Scorer, keeping each finished block in a BlockStore and taking
// the blocks a previous run finished from it. As many blocks are in flight as the scorer has workers; a block
// is the unit that a stop or a crash can lose. `shouldStop` is asked before each new block: once it says yes,
// the blocks in flight are finished and kept, and the run returns with `stopped` set.
import { log } from '../util/log.js';
import type { Scorer } from '../runtime/scorePool.js';
import type { BlockStore } from './blockStore.js';
import type { Block, Range } from './shards.js';

export interface BlockRunOptions {
  scorer: Scorer;
  blocks: readonly Block[];
  /** The rows wanted (the blocks may reach past them at shard boundaries): the rows of `scores`. */
  rows: Range;
  rowLength: number;
  /** The global image row of the scorer's first encoded image. */
  imageOffset: number;
  store?: BlockStore;
  shouldStop?: () => boolean;
  onProgress?: (pairsDone: number, pairsTotal: number) => void;
}

export interface BlockRunResult {
  /** (rows, rowLength), row-major; complete unless `stopped`. */
  scores: Float32Array;
  total: number;
  reused: number;
  scored: number;
  stopped: boolean;
  /** Pairs scored by this run (reused blocks not counted). */
  pairsScored: number;
}

/** Let signal handlers and worker messages run: an in-process block never returns to the event loop. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function scoreBlocks(o: BlockRunOptions): Promise<BlockRunResult> {
  const L = o.rowLength;
  const [r0, r1] = o.rows;
  const scores = new Float32Array((r1 - r0) * L);
  const keep = (b: Block, data: Float32Array) => {
    const lo = Math.max(b.rows[0], r0);
    const hi = Math.min(b.rows[1], r1);
    for (let r = lo; r < hi; r++) scores.set(data.subarray((r - b.rows[0]) * L, (r - b.rows[0] + 1) * L), (r - r0) * L);
  };
  const pairsOf = (b: Block) => (b.rows[1] - b.rows[0]) * (b.captions[1] - b.captions[0]);
  const pairsTotal = o.blocks.reduce((s, b) => s + pairsOf(b), 0);
  let pairsDone = 0;
  const todo: Block[] = [];
  for (const b of o.blocks) {
    const stored = o.store?.read(b);
    if (stored) {
      keep(b, stored);
      pairsDone += pairsOf(b);
    } else todo.push(b);
  }
  const reused = o.blocks.length - todo.length;
  if (o.store) {
    log().info(
      { workDir: o.store.dir, blocks: o.blocks.length, reused, toScore: todo.length },
      `${reused} of ${o.blocks.length} blocks reused from ${o.store.dir}; scoring ${todo.length}`,
    );
  }
  o.onProgress?.(pairsDone, pairsTotal);

  let scored = 0;
  let pairsScored = 0;
  let failure: unknown = null;
  let next = 0;
  const inFlight = new Set<Promise<void>>();
  const launch = (b: Block) => {
    const local: Range = [b.rows[0] - o.imageOffset, b.rows[1] - o.imageOffset];
    let inPartial = 0;
    const p = o.scorer
      .score(local, b.captions, (d) => {
        inPartial = d;
        o.onProgress?.(pairsDone + inPartial, pairsTotal);
      })
      .then(
        (data) => {
          o.store?.write(b, data);
          keep(b, data);
          scored += 1;
          pairsScored += pairsOf(b);
          pairsDone += pairsOf(b);
          o.onProgress?.(pairsDone, pairsTotal);
        },
        (e) => {
          failure ??= e;
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  let stopped = false;
  while (next < todo.length || inFlight.size > 0) {
    if (!stopped && o.shouldStop?.()) stopped = true;
    while (!stopped && failure === null && inFlight.size < o.scorer.workers && next < todo.length) launch(todo[next++]);
    if (inFlight.size === 0) break;
    await Promise.race(inFlight);
    await turn();
    // the scorer's rejection, rethrown as it came (a VslError keeps its message and exit code); the caller closes
    // the scorer, which ends the blocks still in flight
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- a rejection reason is unknown by type
    if (failure !== null) throw failure;
  }
  return { scores, total: o.blocks.length, reused, scored, stopped: stopped && next < todo.length, pairsScored };
}
