// What `pipe gc` removes of old runs: the run views (.pipe/runs/<run-id>/, the report shown with
// that run's facts) and full logs (.pipe/logs/<run-id>/) of each pipeline's runs older than its
// newest `keep`. The run records (.pipe/runs/<run-id>.jsonl) stay: they are small, and `pipe runs`,
// `pipe compare` and the report's history read them. A view or log folder without a record (a run
// whose record was removed by hand) is old by definition and goes too.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { readRecords } from './history.js';

/** How many of each pipeline's newest runs keep their views and logs, unless --keep-runs says. */
export const KEEP_RUN_FILES = 10;

export interface RunFolder {
  /** `runs/<id>` or `logs/<id>`, relative to the cache root. */
  readonly name: string;
  readonly dir: string;
}

/** The run folders (views and logs) that are not among the newest `keep` runs of their pipeline. */
export async function oldRunFolders(root: string, runsDir: string, logsRoot: string, keep: number): Promise<RunFolder[]> {
  const kept = new Set<string>();
  const perPipeline = new Map<string, number>();
  // Newest first: the first `keep` of each pipeline are kept.
  for (const r of await readRecords(root)) {
    const p = r.events.find((e) => e['type'] === 'run-start')?.['pipeline'];
    const name = typeof p === 'string' ? p : '';
    const n = perPipeline.get(name) ?? 0;
    perPipeline.set(name, n + 1);
    if (n < keep) kept.add(r.id);
  }
  const old: RunFolder[] = [];
  for (const [base, dir] of [
    ['runs', runsDir],
    ['logs', logsRoot],
  ] as const) {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory() && !kept.has(e.name)) old.push({ name: `${base}/${e.name}`, dir: path.join(dir, e.name) });
    }
  }
  return old;
}

export async function removeRunFolder(f: RunFolder): Promise<void> {
  await rm(f.dir, { recursive: true, force: true });
}
