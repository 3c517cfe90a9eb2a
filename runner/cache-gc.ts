// What `pipe gc` (and each run's start) sweeps out of the cache under .pipe/ (layout:
// cache.ts), and under which lock: entries no latest/ or sweeps/ link points at, the work dirs
// of keys no live run holds, the temp dirs of processes that are gone. cache.ts reads, commits,
// links and replaces entries.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Cache } from './cache.js';
import { safeReaddir } from './fs-util.js';
import { isAlive, killProcessesIn } from './processes.js';
import { readSparse } from './sparse.js';

/**
 * gc: removes the work dirs (a stage's checkpoints, a pull's staging) of keys that no live
 * run holds, each under that key's lock. Returns the names removed (or that would be).
 */
export async function removeIdleWork(cache: Cache, dryRun = false): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await safeReaddir(cache.workRoot)) {
    const key = name.replace(/^pull-/, '');
    const release = await cache.tryLockKey(key);
    if (!release) continue; // in use by a run
    try {
      if (!dryRun) await rm(path.join(cache.workRoot, name), { recursive: true, force: true });
      removed.push(name);
    } finally {
      await release();
    }
  }
  return removed;
}

/**
 * Every key referenced from latest/ of any pipeline, and from sweeps/<sweep>/<combination>/
 * (a sweep's results stay until that folder is deleted).
 */
export async function referencedKeys(cache: Cache): Promise<Set<string>> {
  const keys = new Set<string>();
  const linksIn = async (dir: string) => {
    // `<stage>.<pid>.tmp` links are left by a run killed while swapping a link: not references.
    for (const s of (await safeReaddir(dir)).filter((n) => !n.endsWith('.tmp'))) {
      const k = await cache.linkedKey(path.join(dir, s));
      if (k) keys.add(k);
    }
  };
  for (const p of await safeReaddir(cache.latestRoot)) await linksIn(path.join(cache.latestRoot, p));
  for (const sweep of await safeReaddir(cache.sweepsRoot)) {
    for (const combo of await safeReaddir(path.join(cache.sweepsRoot, sweep))) await linksIn(path.join(cache.sweepsRoot, sweep, combo));
  }
  return keys;
}

/** Remove temp dirs left by processes that no longer exist (crashed or killed runs). */
export async function sweepTemp(cache: Cache): Promise<number> {
  let removed = 0;
  for (const name of await safeReaddir(cache.tmpRoot)) {
    const pid = Number(name.split('-')[0]);
    if (pid === process.pid) continue;
    if (Number.isInteger(pid) && isAlive(pid)) continue;
    const dir = path.join(cache.tmpRoot, name);
    // After a kill -9 of a run its stage processes live on, still writing into this dir.
    await killProcessesIn(dir);
    try {
      await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
      removed++;
    } catch {
      // Still busy: a temp dir is never read as a result; the next run tries again.
    }
  }
  return removed;
}

/**
 * gc's removal: under the key's lock (a run computing it holds that lock from before its
 * commit until latest/ points at it), and only if no latest/ link points at it by then.
 * Returns whether it removed the entry.
 */
export async function removeUnreferenced(cache: Cache, key: string): Promise<boolean> {
  const release = await cache.lockKey(key);
  try {
    if ((await referencedKeys(cache)).has(key)) return false;
    await cache.removeEntry(key);
    return true;
  } finally {
    await release();
  }
}

/** Bytes an entry holds here (of a sparse entry: its present files). */
export async function sizeOf(cache: Cache, key: string): Promise<number> {
  const sparse = await readSparse(cache.entryDir(key));
  if (sparse) return sparse.presentBytes;
  try {
    const manifest = await cache.readManifest(key);
    return manifest.reduce((n, m) => n + m.size, 0);
  } catch {
    return 0;
  }
}
