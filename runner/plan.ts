// Why a stage would run, and the plan of a whole pipeline without running anything (for
// `pipe status` and `pipe run --dry-run`). Keys are computed from upstream artifacts that are
// already cached; a stage below one that must run is "waiting on upstream".
import type { Artifact } from './types.js';
import type { Pipeline } from './pipeline.js';
import type { Graph } from './graph.js';
import type { Cache, StoredMeta } from './cache.js';
import { localState, resolveKey, type Resolved } from './resolve.js';
import { keyOf, type KeyMaterial } from './fingerprint.js';
import { sparseOf } from './sparse.js';
import { canonicalJson } from './canonical.js';

/** Compare what the stage would be keyed on with the artifact it made last time. */
export async function explainRun(cache: Cache, pipeline: string, stageId: string, material: KeyMaterial, excluded: readonly string[] = []): Promise<string> {
  const latest = await cache.latestKey(pipeline, stageId);
  const prev = latest ? await cache.find(latest) : undefined;
  if (!prev) return 'new';
  if (sparseOf(prev) && prev.key === keyOf(material)) return 'only partly in the cache (a partial pull)';
  const meta = prev.meta as StoredMeta & { extra?: string };
  if (meta.uses !== material.stage) return `stage type changed (${meta.uses} -> ${material.stage})`;
  if (meta.version !== material.version) return `stage version changed (v${meta.version} -> v${material.version})`;
  // meta.json records every param; those the stage leaves out of its key (placement) do not count.
  const keyed = diffKeys(meta.params ?? {}, material.params).filter((k) => !excluded.includes(k));
  if (keyed.length > 0) return `params changed: ${keyed.join(', ')}`;
  const changedInputs = diffKeys(meta.inputs ?? {}, material.inputs);
  if (changedInputs.length > 0) return `input changed: ${changedInputs.join(', ')}`;
  if ((meta.extra ?? undefined) !== (material.extra ?? undefined)) return 'dependency files changed';
  return 'not in the cache';
}

function diffKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
}

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
    let resolved: Resolved;
    try {
      resolved = await resolveKey(pipeline, id, (up) => artifacts.get(up));
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
    const { key, material } = resolved;
    const local = await localState(cache, key);
    if (local.state === 'partial' && !options.force?.has(id)) {
      const { artifact: hit, sparse } = local;
      artifacts.set(id, hit);
      const reason = `${sparse.present.length} of ${sparse.files} files (${sparse.reads.join(', ')}) pulled from ${sparse.remote || 'a remote'} for ${sparse.readers.join(', ') || 'another stage'}; the rest is fetched with --pull when a stage reads it`;
      out.push({ stage: id, uses: spec.uses, state: 'partial', reason, key, artifact: hit });
    } else if (local.state === 'cached' && !options.force?.has(id)) {
      const hit = local.artifact;
      artifacts.set(id, hit);
      out.push({ stage: id, uses: spec.uses, state: 'cached', reason: `made ${hit.meta.createdAt} in ${hit.meta.runId}`, key, artifact: hit });
    } else {
      const damage = cache.damageOf(key);
      const reason = options.force?.has(id)
        ? 'forced'
        : damage
          ? `cache entry damaged (${damage})`
          : await explainRun(cache, pipeline.name, id, material, stage.keyExclude);
      out.push({ stage: id, uses: spec.uses, state: 'run', reason, key });
    }
  }
  return out;
}
