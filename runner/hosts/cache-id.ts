// Which cache made a host: the `pipe:cache` tag that provision puts on an instance and that
// `pipe down` / `pipe hosts` filter on. The runner owns the cache layout, so the stage gets
// these through runner/stage-api.ts instead of parsing its work dir itself.
import { realpathSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';

/** A stable, path-free id of a cache directory for the `pipe:cache` tag (the same for `pipe down`). */
export function cacheIdOf(cacheRoot: string): string {
  let p = path.resolve(cacheRoot);
  try {
    p = realpathSync(p);
  } catch {
    // not created yet: the resolved path is what the first run will realpath to
  }
  return createHash('sha256').update(`pipe-cache\0${p}`).digest('hex').slice(0, 16);
}

/** The cache root of a stage's work dir (`<root>/work/<key>`, see runner/cache.ts). */
export function cacheRootOfWorkDir(workDir: string): string {
  return path.resolve(workDir, '..', '..');
}
