// The scheduler: stages run in dependency order, independent ones concurrently (up to `jobs`),
// each exactly once per run (memoised), in the order: dependencies, key, cache hit?, run, commit.
// With --pull, an upstream artifact that is not local is a stub (its remote meta) until a stage
// that reads it runs; then the files that stage declares (Stage.reads) are pulled, all of them
// when it declares none. A partial pull is a sparse cache entry: never a hit for its own stage.
// What a stage's key and state are is resolve.ts's; running one and committing it, compute.ts's.
// A failure skips what depends on it; without --keep-going nothing new starts after it.
import type { Artifact } from './types.js';
import type { Pipeline } from './pipeline.js';
import type { Graph } from './graph.js';
import type { Cache } from './cache.js';
import type { EventBus } from './events.js';
import type { Output } from './output.js';
import { resolveStage, type ResolvedStage } from './resolve.js';
import { describeError, failedVerdict, type StageOutcome } from './outcome.js';
import type { ExecuteOptions, RunContext } from './run-context.js';
import { cached, compute } from './compute.js';

export type { ExecuteOptions } from './run-context.js';

export interface ExecuteResult {
  readonly outcomes: ReadonlyMap<string, StageOutcome>;
  readonly failed: boolean;
  readonly interrupted: boolean;
}

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

export async function execute(pipeline: Pipeline, graph: Graph, cache: Cache, bus: EventBus, output: Output, options: ExecuteOptions): Promise<ExecuteResult> {
  const outcomes = new Map<string, StageOutcome>();
  const running = new Map<string, Promise<StageOutcome>>();
  const slots = new Semaphore(Math.max(1, options.jobs));
  const needed = new Set(options.needed);
  const run: RunContext = { pipeline, graph, cache, bus, output, options, outcomes };
  let stopStarting = false;

  const outcomeOf = (id: string): Promise<StageOutcome> => {
    let p = running.get(id);
    if (!p) {
      p = runOne(id).then((o) => {
        outcomes.set(id, o);
        if (o.status === 'failed' && !options.keepGoing) stopStarting = true;
        return o;
      });
      running.set(id, p);
    }
    return p;
  };

  const artifactOf = (id: string): Artifact | undefined => {
    const o = outcomes.get(id);
    return o && (o.status === 'cached' || o.status === 'ran') ? o.artifact : undefined;
  };

  const runOne = async (id: string): Promise<StageOutcome> => {
    const spec = pipeline.stages.get(id);
    if (!spec) return { status: 'failed', error: `unknown stage ${id}` };
    const stage = pipeline.stageImpls.get(id);
    if (!stage) return { status: 'failed', error: `unknown stage type ${spec.uses}` };

    const deps = (graph.deps.get(id) ?? []).filter((d) => needed.has(d));
    const depOutcomes = await Promise.all(deps.map(async (d) => [d, await outcomeOf(d)] as const));
    for (const [d, o] of depOutcomes) {
      if (o.status === 'failed' || o.status === 'skipped') {
        const reason = o.status === 'failed' ? `upstream ${d} failed` : `upstream ${d} did not run`;
        bus.emit({ type: 'stage-skipped', stage: id, reason });
        return { status: 'skipped', reason };
      }
    }
    // A stage's key reads the local files it names: one gone since the run began (or
    // unreadable) fails that stage with the reason, like any other stage failure. A stage that
    // is not selected only needs its content hash: with --pull, a stub from the remote will do
    // (compute pulls its files when a stage that runs reads them). A stage that is never cached
    // (provision) re-checks the real world even when only its dependents were selected.
    const selected = options.selected.has(id);
    const mayStub = !selected && stage.cache !== 'never';
    let r: ResolvedStage;
    try {
      r = await resolveStage(pipeline, cache, id, artifactOf, { runId: options.runId, ...(mayStub && options.remote ? { stubFrom: options.remote } : {}) });
    } catch (e) {
      bus.emit({ type: 'stage-failed', stage: id, error: describeError(e), durationMs: 0 });
      return { status: 'failed', error: describeError(e) };
    }
    if (r.state === 'cached' && !(selected && options.force)) return cached(run, id, r.artifact);
    // A sparse entry (a partial pull) is never a hit for its own stage, but an upstream stage
    // that does not run needs only its content hash: the stages that read it check that it
    // holds their files (or complete it from the remote).
    if ((r.state === 'partial' || r.state === 'stub') && mayStub) return cached(run, id, r.artifact);
    if (mayStub) {
      const reason = `not selected and not in the cache for its current inputs (${r.reason}); run it too or drop --only`;
      bus.emit({ type: 'stage-failed', stage: id, error: reason, durationMs: 0 });
      return { status: 'failed', error: reason };
    }
    if (stopStarting || options.signal.aborted) {
      const reason = options.signal.aborted ? 'interrupted' : 'run stopped after a failure (use --keep-going to go on)';
      bus.emit({ type: 'stage-skipped', stage: id, reason });
      return { status: 'skipped', reason };
    }

    const release = await slots.acquire();
    try {
      return await compute(run, r);
    } finally {
      release();
    }
  };

  await Promise.all(options.needed.map((id) => outcomeOf(id)));
  await output.closeLogs();
  // A failed verdict fails the run, but only after its stage and those downstream committed.
  const failed = [...outcomes.values()].some((o) => o.status === 'failed' || o.status === 'skipped' || failedVerdict(o));
  return { outcomes, failed, interrupted: options.signal.aborted };
}
