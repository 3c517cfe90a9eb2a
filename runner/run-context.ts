// What the scheduler (execute.ts) and compute-and-commit (compute.ts) share about one run: its
// options and the state both read, in a module of its own so that neither imports the other's
// types back.
import type { Pipeline } from './pipeline.js';
import type { Graph } from './graph.js';
import type { Cache } from './cache.js';
import type { EventBus } from './events.js';
import type { Output } from './output.js';
import type { RemoteResolver } from './remote/index.js';
import type { StageOutcome } from './outcome.js';

export interface ExecuteOptions {
  readonly runId: string;
  readonly jobs: number;
  /** Stages the user asked to run; the others in `needed` must come from the cache. */
  readonly selected: ReadonlySet<string>;
  /** Selected stages plus the upstream they need, in topological order. */
  readonly needed: readonly string[];
  readonly force: boolean;
  readonly keepGoing: boolean;
  readonly signal: AbortSignal;
  /** --pull: artifacts missing here are taken from the remote cache. */
  readonly remote?: RemoteResolver;
  /**
   * --only: the selected stages are computed here even when the remote has their result (CI
   * re-runs the evaluation on pulled upstream artifacts); a local cache hit still counts.
   */
  readonly computeSelected?: boolean;
}

/** One run, as compute.ts sees it: what execute() was given, and the outcomes so far. */
export interface RunContext {
  readonly pipeline: Pipeline;
  readonly graph: Graph;
  readonly cache: Cache;
  readonly bus: EventBus;
  readonly output: Output;
  readonly options: ExecuteOptions;
  /** Stage -> its outcome, once settled; compute reads upstream ones (lineage, placement). */
  readonly outcomes: Map<string, StageOutcome>;
}
