// What `pipe run` and `pipe status` say about secrets before anything runs: a stage that would run
// without a variable it needs is named, located, before the first stage starts (a stage that
// comes from the cache needs no secret, so only those the plan would run count).
import type { Pipeline } from './pipeline.js';
import type { Graph } from './graph.js';
import type { Cache } from './cache.js';
import { planStages, type PlanEntry } from './plan.js';
import { ExitError, EXIT } from './errors.js';
import { SET_HINT, unsetSecrets, type Env, type UnsetSecret } from './secrets.js';

/** Plan entries that would run (or wait on upstream that runs) get "needs API_TOKEN, not set". */
export function withSecretNotes(plan: readonly PlanEntry[], pipeline: Pipeline, env: Env = process.env): { entry: PlanEntry; unset: string[] }[] {
  return plan.map((entry) => {
    const spec = pipeline.stages.get(entry.stage);
    if (!spec || (entry.state !== 'run' && entry.state !== 'blocked')) return { entry, unset: [] };
    const unset = unsetSecrets(pipeline, pipeline.stageImpls.get(entry.stage), spec, env).map((u) => u.names);
    return { entry: unset.length ? { ...entry, reason: `${entry.reason}; needs ${unset.join(', ')}, not set` } : entry, unset };
  });
}

/**
 * `pipe run`: exit 2 before anything starts when a stage that would run lacks a secret. Cheap
 * when every declared variable is set (no plan is made). With --pull the stage may come from
 * the remote: then the check is left to the stage itself, when it is about to start.
 */
export async function refuseUnsetSecrets(
  pipeline: Pipeline,
  graph: Graph,
  cache: Cache,
  needed: readonly string[],
  force: ReadonlySet<string>,
  env: Env = process.env,
): Promise<void> {
  const unset: UnsetSecret[] = needed.flatMap((id) => {
    const spec = pipeline.stages.get(id);
    return spec ? unsetSecrets(pipeline, pipeline.stageImpls.get(id), spec, env) : [];
  });
  if (unset.length === 0) return;
  const plan = await planStages(pipeline, graph, cache, needed, { force });
  const running = new Set(plan.filter((p) => p.state === 'run' || p.state === 'blocked').map((p) => p.stage));
  const problems = unset.filter((u) => running.has(u.stage));
  if (problems.length === 0) return;
  // A pipeline-level secret reads the same for every stage: said once.
  throw new ExitError(EXIT.usage, `${[...new Set(problems.map((p) => p.message))].join('\n')}\n${SET_HINT}`);
}
