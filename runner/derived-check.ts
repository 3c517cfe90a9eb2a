// `pipe verify` for derived/ (frozen features, downloaded weights, converted graphs): each folder
// is re-hashed against the manifest its .complete file holds, as a cache entry is against its
// manifest.json. A folder made before derived folders had a manifest can only be listed.
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ManifestEntry } from './types.js';
import { DERIVED_COMPLETE, type Cache } from './cache.js';
import { verifyAgainstManifest, type VerifyProblem } from './manifest.js';
import { safeReaddir } from './fs-util.js';

export interface DerivedCheck {
  /** The folder's name under derived/ (`features-<hash>`). */
  readonly name: string;
  readonly problems: VerifyProblem[];
  /** Why it could not be checked (no manifest), when it could not. */
  readonly unchecked?: string;
}

export async function verifyDerived(cache: Cache): Promise<DerivedCheck[]> {
  const out: DerivedCheck[] = [];
  for (const name of (await safeReaddir(cache.derivedRoot)).sort()) {
    const dir = path.join(cache.derivedRoot, name);
    let complete: { manifest?: ManifestEntry[] };
    try {
      complete = JSON.parse(await readFile(path.join(dir, DERIVED_COMPLETE), 'utf8')) as typeof complete;
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing (never served: rebuilt when a stage needs it)' : 'does not parse';
      out.push({ name, problems: [{ path: DERIVED_COMPLETE, problem: why }] });
      continue;
    }
    if (!Array.isArray(complete?.manifest)) {
      out.push({ name, problems: [], unchecked: 'made by an older pipe: no manifest to check it against' });
      continue;
    }
    const problems = (await verifyAgainstManifest(dir, complete.manifest)).filter((p) => p.path !== DERIVED_COMPLETE);
    out.push({ name, problems });
  }
  return out;
}

/** Remove a derived folder (verify --remove): renamed away first, so it is never half there. */
export async function removeDerived(cache: Cache, name: string): Promise<void> {
  const release = await cache.lockKey(`derived-${name}`);
  try {
    const doomed = path.join(cache.tmpRoot, `${process.pid}-derived-${name}`);
    await rename(path.join(cache.derivedRoot, name), doomed);
    await rm(doomed, { recursive: true, force: true });
  } finally {
    await release();
  }
}
