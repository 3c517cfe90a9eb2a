// Where a sweep's results are found. Each combination is an ordinary run, and an ordinary run
// points latest/<pipeline>/<stage> at what it made: after a sweep, latest/ would describe its
// last combination, which neither the pipeline file nor any `pipe run` without --sweep gives.
// So latest/ is put back as it was, and each combination's artifacts are linked instead under
// sweeps/<first run id>/<n>-<values>/<stage> (the same kind of link as latest/'s).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Cache } from './cache.js';
import { safeReaddir } from './fs-util.js';
import type { RunSummary } from './history.js';
import { shortParam } from './history.js';
import { describeCombination, type Combination } from './sweep.js';

/** latest/<pipeline>/<stage> -> key, for every stage linked now. */
export async function snapshotLatest(cache: Cache, pipeline: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  for (const stage of (await safeReaddir(path.join(cache.latestRoot, pipeline))).filter((n) => !n.endsWith('.tmp'))) {
    const key = await cache.latestKey(pipeline, stage);
    if (key) links.set(stage, key);
  }
  return links;
}

/** Puts latest/<pipeline>/ back to `before`: its links restored, the ones added since removed. */
export async function restoreLatest(cache: Cache, pipeline: string, before: ReadonlyMap<string, string>): Promise<void> {
  const now = await snapshotLatest(cache, pipeline);
  for (const [stage, key] of before) if (now.get(stage) !== key) await cache.setLatest(pipeline, stage, key);
  for (const stage of now.keys()) if (!before.has(stage)) await rm(path.join(cache.latestRoot, pipeline, stage), { force: true });
}

/** `lr=0.01_seed=2`: the combination as the sweep prints it, as a folder name. */
export function combinationLabel(c: Combination): string {
  return describeCombination(c, shortParam).replace(/[^A-Za-z0-9._=-]+/g, '_');
}

/**
 * Links every stage each combination's run made or used under sweeps/<sweep>/<n>-<label>/;
 * returns that folder (undefined when no combination has a run record).
 */
export async function linkCombinations(
  cache: Cache,
  outcomes: readonly { combination: Combination; runId?: string }[],
  runs: ReadonlyMap<string, RunSummary>,
): Promise<string | undefined> {
  const first = outcomes.find((o) => o.runId && runs.has(o.runId));
  if (!first) return undefined;
  const root = path.join(cache.sweepsRoot, first.runId!);
  for (const o of outcomes) {
    const run = o.runId ? runs.get(o.runId) : undefined;
    if (!run) continue;
    const dir = path.join(root, `${o.combination.index}-${combinationLabel(o.combination)}`);
    for (const [stage, rec] of Object.entries(run.stages)) {
      if (rec.key && (rec.status === 'ran' || rec.status === 'cached')) await cache.linkEntry(rec.key, path.join(dir, stage));
    }
  }
  return root;
}
