// Content hashes of project files named by globs (a command stage's `deps`, an `images`
// folder). Hashing 25,000 files on every run would make a no-op run slow, so a stat cache
// keyed by (path, size, mtime, inode) re-uses a file's hash while it is unchanged.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile, stat, mkdir, rename, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { glob } from 'tinyglobby';
import { isAlive } from './processes.js';
import { mapLimit } from './map-limit.js';

export { mapLimit };

export interface FileHash {
  readonly path: string; // relative to the base dir, '/'-separated
  readonly size: number;
  readonly sha256: string;
}

interface StatEntry {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/** Where the stat cache lives; set by the runner (the cache dir), else hashes are recomputed. */
let statCacheFile: string | undefined;
let statCache: Map<string, StatEntry> | undefined;
let statCacheDirty = false;

export function useStatCache(file: string | undefined): void {
  statCacheFile = file;
  statCache = undefined;
  statCacheDirty = false;
}

async function loadStatCache(): Promise<Map<string, StatEntry>> {
  if (statCache) return statCache;
  statCache = new Map();
  if (statCacheFile) {
    try {
      const raw = JSON.parse(await readFile(statCacheFile, 'utf8')) as Record<string, StatEntry>;
      statCache = new Map(Object.entries(raw));
    } catch {
      // missing or unreadable: start afresh
    }
  }
  return statCache;
}

/** Persist the stat cache (atomically); called by the runner at the end of a run. */
export async function saveStatCache(): Promise<void> {
  if (!statCacheFile || !statCache || !statCacheDirty) return;
  await mkdir(path.dirname(statCacheFile), { recursive: true });
  const tmp = `${statCacheFile}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(Object.fromEntries(statCache)));
  await rename(tmp, statCacheFile);
  statCacheDirty = false;
  // A run killed while saving left its temp file: remove those of processes that are gone.
  const base = path.basename(statCacheFile);
  for (const name of await readdir(path.dirname(statCacheFile)).catch(() => [] as string[])) {
    const m = name.startsWith(`${base}.`) ? /^(\d+)\.tmp$/.exec(name.slice(base.length + 1)) : null;
    if (m && !isAlive(Number(m[1]))) await rm(path.join(path.dirname(statCacheFile), name), { force: true });
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** sha256 of one file, re-used from the stat cache while size, mtime and inode are unchanged. */
export async function cachedFileHash(absPath: string): Promise<{ size: number; sha256: string }> {
  const cache = await loadStatCache();
  const st = await stat(absPath);
  const hit = cache.get(absPath);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs && hit.ino === st.ino) {
    return { size: st.size, sha256: hit.sha256 };
  }
  const sha256 = await sha256File(absPath);
  cache.set(absPath, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 });
  statCacheDirty = true;
  return { size: st.size, sha256 };
}

/** Hashes of every file matching the globs under baseDir, sorted by path. */
export async function hashFiles(baseDir: string, patterns: readonly string[]): Promise<FileHash[]> {
  const files = (await glob([...patterns], { cwd: baseDir, onlyFiles: true, dot: false, followSymbolicLinks: true })).sort();
  return mapLimit(files, 8, async (rel) => {
    const { size, sha256 } = await cachedFileHash(path.join(baseDir, rel));
    return { path: rel.split(path.sep).join('/'), size, sha256 };
  });
}
