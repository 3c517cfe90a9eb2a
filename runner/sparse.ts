// Sparse cache entries: a partial pull (`pipe run --pull` fetched only the files its readers
// declare) keeps the full manifest.json and meta.json but only some files under data/, listed
// in sparse.json. It is never a cache hit (Cache.lookup skips it; Cache.find returns it, marked:
// see sparseOf): a stage that reads more completes it in place (verified files are added, then
// sparse.json is removed last, so a reader never sees a file vanish), or a re-run of its stage
// replaces it.
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Artifact, ManifestEntry } from './types.js';
import type { EntryStore, StoredMeta } from './cache-meta.js';
import { fsyncPath, fsyncTree } from './manifest.js';
import { makeReadOnly, READ_ONLY, writeAtomic } from './fs-util.js';
import { shapeOf } from './entry-check.js';

/** sparse.json of a sparse entry: which of its manifest's files are under data/ (each verified by sha256). */
export interface SparseInfo {
  readonly version: 1;
  /** The read patterns of the pulls that made it (their union). */
  readonly reads: readonly string[];
  /** The stages it was pulled for. */
  readonly readers: readonly string[];
  /** Where it was pulled from. */
  readonly remote: string;
  /** Files under data/, sorted. */
  readonly present: readonly string[];
  readonly presentBytes: number;
  /** The whole artifact, as manifest.json lists it. */
  readonly files: number;
  readonly bytes: number;
}

const SPARSE = Symbol.for('pipe.sparse-entry');

/** Marks an artifact read from a sparse entry (not enumerable: never serialised with it). */
export function markSparse(a: Artifact, sparse: SparseInfo): Artifact {
  return Object.defineProperty(a, SPARSE, { value: sparse, enumerable: false });
}

/** The sparse.json of an artifact that `Cache.find` returned for a sparse entry; undefined for a complete one. */
export function sparseOf(a: Artifact): SparseInfo | undefined {
  return (a as { [SPARSE]?: SparseInfo })[SPARSE];
}

/**
 * A whole artifact was made for a key that holds a sparse entry (the caller holds the key's
 * lock). Same content: the files the entry lacks move in, then it becomes complete (in place:
 * readers of its files never see one vanish). Other content (a non-deterministic stage):
 * the new entry replaces it.
 */
export async function replaceSparse(
  cache: EntryStore,
  existing: Artifact,
  sparse: SparseInfo,
  tmpDir: string,
  manifest: readonly ManifestEntry[],
  meta: StoredMeta,
): Promise<void> {
  if (existing.contentHash === meta.contentHash) {
    const have = new Set(sparse.present);
    await extendSparse(
      cache,
      meta.key,
      path.join(tmpDir, 'data'),
      manifest.map((m) => m.path).filter((p) => !have.has(p)),
      { meta },
    );
    return;
  }
  await cache.swapIn(tmpDir, meta.key);
}

/**
 * Seal a temp dir holding some of an artifact's files (data/) into a sparse entry: the full
 * manifest and meta, and sparse.json. The caller has verified every file against the manifest,
 * whose hash is the meta's content hash. If the key was committed meanwhile, that entry wins
 * (unless it is damaged).
 */
export async function commitSparse(
  cache: EntryStore,
  tmpDir: string,
  meta: StoredMeta,
  manifest: readonly ManifestEntry[],
  sparse: Omit<SparseInfo, 'version' | 'presentBytes' | 'files' | 'bytes'>,
): Promise<Artifact> {
  const info = sparseInfo(manifest, sparse);
  if (!(await cache.seal(tmpDir, meta, manifest, info.present, { [SPARSE_FILE]: JSON.stringify(info) }))) {
    // A damaged entry (see Cache.find) is replaced; a whole one wins.
    if (!(await cache.find(meta.key))) await cache.swapIn(tmpDir, meta.key);
    await rm(tmpDir, { recursive: true, force: true });
  }
  await fsyncPath(cache.cacheDir);
  const artifact = await cache.find(meta.key);
  if (!artifact) throw new Error(`cache entry ${meta.key} vanished after commit`);
  return artifact;
}

/**
 * Add verified files (paths relative to `fromDir`, moved from there) to a sparse entry, in
 * place; the caller holds the key's lock. sparse.json is rewritten after the files are in;
 * once every file of the manifest is there (each checked by size) it is removed, last: the
 * entry is then complete. `meta` replaces meta.json (before that).
 */
export async function extendSparse(
  cache: EntryStore,
  key: string,
  fromDir: string,
  paths: readonly string[],
  update: { meta?: StoredMeta; reads?: readonly string[]; readers?: readonly string[] } = {},
): Promise<Artifact> {
  const entry = cache.entryDir(key);
  const data = path.join(entry, 'data');
  const current = await readSparse(entry);
  if (!current) throw new Error(`cache entry ${key} is not a sparse entry`);
  for (const p of paths) {
    const dest = path.join(data, p);
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(path.join(fromDir, p), dest);
  }
  await makeReadOnly(data, paths);
  await fsyncTree(data, paths);
  const manifest = await cache.readManifest(key);
  const present = [...new Set([...current.present, ...paths])].sort();
  const info = sparseInfo(manifest, {
    reads: [...new Set([...current.reads, ...(update.reads ?? [])])].sort(),
    readers: [...new Set([...current.readers, ...(update.readers ?? [])])],
    remote: current.remote,
    present,
  });
  if (update.meta) {
    // The shape is of the manifest.json written here (a pulled meta may carry the remote's).
    const { shape: _remote, ...meta } = update.meta;
    const shape = shapeOf(manifest, await readFile(path.join(entry, 'manifest.json'), 'utf8'));
    await writeAtomic(path.join(entry, 'meta.json'), JSON.stringify({ ...meta, shape }, null, 2), READ_ONLY);
  }
  if (info.present.length < manifest.length) {
    await writeAtomic(path.join(entry, SPARSE_FILE), JSON.stringify(info), READ_ONLY);
  } else {
    for (const m of manifest) {
      let size = -1;
      try {
        size = (await stat(path.join(data, m.path))).size;
      } catch {
        // missing: below
      }
      if (size !== m.size)
        throw new Error(`cache entry ${key}: ${m.path} is ${size < 0 ? 'missing' : `${size} bytes, the manifest says ${m.size}`} after completing it`);
    }
    await rm(path.join(entry, SPARSE_FILE), { force: true });
    await fsyncPath(entry);
  }
  const artifact = await cache.find(key);
  if (!artifact) throw new Error(`cache entry ${key} vanished while completing it`);
  return artifact;
}

const SPARSE_FILE = 'sparse.json';

function sparseInfo(manifest: readonly ManifestEntry[], s: Pick<SparseInfo, 'reads' | 'readers' | 'remote' | 'present'>): SparseInfo {
  const sizes = new Map(manifest.map((m) => [m.path, m.size]));
  const present = [...new Set(s.present)].filter((p) => sizes.has(p)).sort();
  return {
    version: 1,
    reads: [...s.reads],
    readers: [...s.readers],
    remote: s.remote,
    present,
    presentBytes: present.reduce((n, p) => n + (sizes.get(p) ?? 0), 0),
    files: manifest.length,
    bytes: manifest.reduce((n, m) => n + m.size, 0),
  };
}

/**
 * An entry's sparse.json, or undefined for a complete entry. An unreadable one still marks the
 * entry sparse (holding nothing known), so it is never taken for a complete one.
 */
export async function readSparse(entryDir: string): Promise<SparseInfo | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(entryDir, SPARSE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    text = '';
  }
  try {
    const s = JSON.parse(text) as SparseInfo;
    if (s && Array.isArray(s.present) && Array.isArray(s.reads) && Array.isArray(s.readers)) return s;
  } catch {
    // below
  }
  return { version: 1, reads: [], readers: [], remote: '', present: [], presentBytes: 0, files: 0, bytes: 0 };
}
