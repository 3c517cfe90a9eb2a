// The plan of a whole pipeline without running anything (for `pipe status` and
// `pipe run --dry-run`), from resolve.ts's states and reasons. Keys are computed from upstream
// artifacts that are already cached; a stage below one that must run is "waiting on upstream".
import type { Artifact } from './types.js';
import type { Pipeline } from './pipeline.js';
import type { Graph } from './graph.js';
import type { Cache } from './cache.js';
import { resolveStage, type ResolvedStage } from './resolve.js';

/** 'partial': a partial pull (sparse entry): enough for its dependents' keys, not a hit for itself. */
export type PlanState = 'cached' | 'partial' | 'run' | 'blocked';

export interface PlanEntry {
  readonly stage: string;
  readonly uses: string;
  readonly state: PlanState;
  /** For 'run': why. For 'blocked': which upstream must run first. For 'cached': since when. */
  readonly reason: string;
  readonly key?: string;
  readonly artifact?: Artifact;
}

export interface PlanOptions {
  readonly force?: ReadonlySet<string>;
}

/** What `pipe run` would do for the given stages (topological order), read from the cache only. */
export async function planStages(pipeline: Pipeline, graph: Graph, cache: Cache, stages: readonly string[], options: PlanOptions = {}): Promise<PlanEntry[]> {
  const artifacts = new Map<string, Artifact>();
  const out: PlanEntry[] = [];
  for (const id of stages) {
    const spec = pipeline.stages.get(id);
    const stage = pipeline.stageImpls.get(id);
    if (!spec || !stage) continue;
    const pending = (graph.deps.get(id) ?? []).filter((d) => stages.includes(d) && !artifacts.has(d));
    if (pending.length > 0) {
      out.push({ stage: id, uses: spec.uses, state: 'blocked', reason: `after ${pending.join(', ')} (its output decides)` });
      continue;
    }
    let r: ResolvedStage;
    try {
      r = await resolveStage(pipeline, cache, id, (up) => artifacts.get(up));
    } catch (e) {
      out.push({ stage: id, uses: spec.uses, state: 'run', reason: `would fail: ${(e as Error).message}` });
      continue;
    }
    if (stage.cache === 'never') {
      out.push({ stage: id, uses: spec.uses, state: 'run', reason: 'runs every time (checks the real world)' });
      const latest = await cache.latestKey(pipeline.name, id);
      const prev = latest ? await cache.lookup(latest) : undefined;
      if (prev) artifacts.set(id, prev);
      continue;
    }
    const { key } = r;
    if (options.force?.has(id)) {
      out.push({ stage: id, uses: spec.uses, state: 'run', reason: 'forced', key });
    } else if (r.state === 'partial' || r.state === 'cached') {
      artifacts.set(id, r.artifact);
      out.push({ stage: id, uses: spec.uses, state: r.state, reason: r.reason, key, artifact: r.artifact });
    } else {
      out.push({ stage: id, uses: spec.uses, state: 'run', reason: r.reason, key });
    }
  }
  return out;
}
