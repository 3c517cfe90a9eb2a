// Where a sweep's results are found. Each combination is an ordinary run, and an ordinary run
// points latest/<pipeline>/<stage> at what it made: after a sweep, latest/ would describe its
// last combination, which neither the pipeline file nor any `pipe run` without --sweep gives.
// So latest/ is put back as it was, and each combination's artifacts are linked instead under
// sweeps/<first run id>/<n>-<values>/<stage> (the same kind of link as latest/'s).
import { mkdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Cache } from './cache.js';
import { safeReaddir } from './fs-util.js';
import type { RunSummary } from './history.js';
import type { Combination } from './sweep.js';

/** latest/<pipeline>/<stage> -> link target, for every stage linked now. */
export async function snapshotLatest(cache: Cache, pipeline: string): Promise<Map<string, string>> {
  const dir = path.join(cache.latestRoot, pipeline);
  const links = new Map<string, string>();
  for (const stage of (await safeReaddir(dir)).filter((n) => !n.endsWith('.tmp'))) {
    try {
      links.set(stage, await readlink(path.join(dir, stage)));
    } catch {
      // not a link: not ours to keep
    }
  }
  return links;
}

async function link(target: string, at: string): Promise<void> {
  const tmp = `${at}.${process.pid}.tmp`;
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, at);
}

/** Puts latest/<pipeline>/ back to `before`: its links restored, the ones added since removed. */
export async function restoreLatest(cache: Cache, pipeline: string, before: ReadonlyMap<string, string>): Promise<void> {
  const dir = path.join(cache.latestRoot, pipeline);
  const now = await snapshotLatest(cache, pipeline);
  for (const [stage, target] of before) if (now.get(stage) !== target) await link(target, path.join(dir, stage));
  for (const stage of now.keys()) if (!before.has(stage)) await rm(path.join(dir, stage), { force: true });
}

/** `lr=0.01_seed=2`: a folder name from the combination's values. */
export function combinationLabel(c: Combination): string {
  const short = (p: string) => p.split('.').at(-1) ?? p;
  return c.values.map((v) => `${short(v.path)}=${v.text}`.replace(/[^A-Za-z0-9._=-]+/g, '_')).join('_');
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
  const root = path.join(cache.root, 'sweeps', first.runId!);
  for (const o of outcomes) {
    const run = o.runId ? runs.get(o.runId) : undefined;
    if (!run) continue;
    const dir = path.join(root, `${o.combination.index}-${combinationLabel(o.combination)}`);
    await mkdir(dir, { recursive: true });
    for (const [stage, rec] of Object.entries(run.stages)) {
      if (!rec.key || (rec.status !== 'ran' && rec.status !== 'cached')) continue;
      await link(path.relative(dir, path.join(cache.entryDir(rec.key), 'data')), path.join(dir, stage));
    }
  }
  return root;
}
