// Which cache made a host: the `pipe:cache` tag that provision puts on an instance and that
// `pipe down` / `pipe hosts` filter on. The runner owns the cache layout, so the stage gets
// these through runner/stage-api.ts instead of parsing its work dir itself.
import { realpathSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

/** A stable, path-free id of a cache directory for the `pipe:cache` tag (the same for `pipe down`). */
export function cacheIdOf(cacheRoot: string): string {
  return createHash('sha256')
    .update(`pipe-cache\0${realOrResolved(cacheRoot)}`)
    .digest('hex')
    .slice(0, 16);
}

/**
 * A stable, path-free id of a local directory on this machine (its real path and the hostname):
 * the folders a run uses on a shared host are named by it, so that two clones of one pipeline
 * (two checkouts, two people sharing an account, a CI job beside a laptop: the same path on
 * two machines included) never share one.
 */
export function originIdOf(dir: string): string {
  return createHash('sha256')
    .update(`pipe-origin\0${os.hostname()}\0${realOrResolved(dir)}`)
    .digest('hex')
    .slice(0, 16);
}

function realOrResolved(dir: string): string {
  const p = path.resolve(dir);
  try {
    return realpathSync(p);
  } catch {
    return p; // not created yet: the resolved path is what the first run will realpath to
  }
}

/** The cache root of a stage's work dir (`<root>/work/<key>`, see runner/cache.ts). */
export function cacheRootOfWorkDir(workDir: string): string {
  return path.resolve(workDir, '..', '..');
}
