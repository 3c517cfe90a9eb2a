// `pipe gc`: remove cache entries that no pipeline's latest run points at, the derived
// sub-artifacts only they used, work dirs no run holds, temp dirs of dead runs, and the views
// and logs of each pipeline's older runs (runner/run-files-gc.ts).
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Cache } from '../cache.js';
import { assertDirectoryOrAbsent, cacheOrigin, cacheRoot, openPipeline } from '../open.js';
import { Output } from '../output.js';
import { EXIT, ExitError } from '../errors.js';
import { defaultCacheRoot } from '../cache-home.js';
import { KEEP_RUN_FILES, oldRunFolders, removeRunFolder } from '../run-files-gc.js';
import { referencedKeys, removeIdleWork, removeUnreferenced, sizeOf, sweepTemp } from '../cache-gc.js';

export async function gcCommand(file: string | undefined, flags: { dryRun?: boolean; cacheDir?: string; keepRuns?: number }): Promise<number> {
  let root: string;
  if (file) root = cacheRoot((await openPipeline(file, {})).pipeline, flags.cacheDir);
  else {
    const home = await defaultCacheRoot('pipe gc', flags.cacheDir);
    root = home.root;
    if (home.note) process.stderr.write(`${home.note}\n`);
  }
  await assertDirectoryOrAbsent(
    root,
    file ? cacheOrigin(undefined, flags.cacheDir) : flags.cacheDir ? '--cache-dir' : process.env.PIPE_CACHE_DIR ? 'PIPE_CACHE_DIR' : 'the default cache dir',
  );
  const cache = new Cache(root);
  const keys = await cache.listKeys();
  if (keys.length === 0 && !(await readdir(root).catch(() => undefined))) throw new ExitError(EXIT.usage, `no pipe cache at ${root}`);
  const keep = await referencedKeys(cache);
  const out = new Output({ stream: process.stdout, live: false });
  let freed = 0;
  let removed = 0;
  for (const k of keys) {
    if (keep.has(k)) continue;
    const size = await sizeOf(cache, k);
    // A run may have committed k since `keep` was read: removeUnreferenced waits for its lock
    // and looks at latest/ again.
    if (!flags.dryRun && !(await removeUnreferenced(cache, k))) {
      keep.add(k);
      continue;
    }
    freed += size;
    removed++;
    out.line(`${flags.dryRun ? 'would remove' : 'removed'} ${k.slice(0, 12)} (${(size / 1e6).toFixed(1)} MB)`);
  }
  const keptDerived = new Set<string>();
  for (const k of keep) {
    const a = await cache.find(k);
    for (const d of (a?.meta.info?.derived as string[] | undefined) ?? []) keptDerived.add(d);
  }
  for (const d of await readdir(cache.derivedRoot).catch(() => [] as string[])) {
    if (keptDerived.has(d)) continue;
    removed++;
    out.line(`${flags.dryRun ? 'would remove' : 'removed'} derived/${d}`);
    if (!flags.dryRun) await rm(path.join(cache.derivedRoot, d), { recursive: true, force: true });
  }
  // Work dirs (checkpoints of interrupted stages, staging of interrupted pulls) of keys no run holds.
  for (const w of await removeIdleWork(cache, Boolean(flags.dryRun))) {
    removed++;
    out.line(`${flags.dryRun ? 'would remove' : 'removed'} work/${w}`);
  }
  for (const f of await oldRunFolders(root, cache.runsDir, cache.logsRoot, flags.keepRuns ?? KEEP_RUN_FILES)) {
    removed++;
    out.line(`${flags.dryRun ? 'would remove' : 'removed'} ${f.name}`);
    if (!flags.dryRun) await removeRunFolder(f);
  }
  if (!flags.dryRun) await sweepTemp(cache);
  out.line(`${flags.dryRun ? 'would remove' : 'removed'} ${removed} entr${removed === 1 ? 'y' : 'ies'}, ${(freed / 1e6).toFixed(1)} MB; kept ${keep.size}`);
  return EXIT.ok;
}
