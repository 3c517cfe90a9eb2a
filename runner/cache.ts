// The content-addressed artifact store under `.pipe/`:
//   cache/<key>/{data/, manifest.json, meta.json}   committed artifacts (immutable)
//   cache/<key>/sparse.json                         ...or a sparse entry: a partial pull (below)
//   derived/<name>-<hash>/                          sub-artifacts stages ask for (features, weights)
//   tmp/<pid>-<n>/                                  work in progress; never read as a result
//   work/<key>/                                     a stage's resumable scratch (checkpoints)
//   latest/<pipeline>/<stage>                       symlink to the newest artifact's data/
//   locks/                                          one lock per key being computed
// A commit is: stage writes tmp/<id>/data, the runner writes the manifest and meta, fsyncs,
// and renames tmp/<id> to cache/<key>. A crash at any instant leaves nothing or a whole entry.
// A sparse entry (`pipe run --pull` fetched only the files its readers declare) holds the full
// manifest.json and meta.json but only some files under data/, listed in sparse.json. It is
// never a cache hit (`lookup` does not return it; `find` does, marked, see sparseOf): a stage
// that reads more completes it, in place (verified files are added, then sparse.json is
// removed last, so a reader never sees a file vanish), or a re-run of its stage replaces it.
import { mkdir, readFile, rename, rm, writeFile, readdir, symlink, readlink, stat, lstat, lutimes } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Artifact, ArtifactKind, ArtifactMeta, ManifestEntry } from './types.js';
import { buildManifest, contentHashOf, fsyncPath, fsyncTree, listFiles, verifyAgainstManifest, type VerifyProblem } from './manifest.js';
import { hashOf } from './canonical.js';

export interface StoredMeta extends ArtifactMeta {
  readonly kind: ArtifactKind;
}

export type MetaDraft = Omit<StoredMeta, 'contentHash'>;

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

/** The sparse.json of an artifact that `Cache.find` returned for a sparse entry; undefined for a complete one. */
export function sparseOf(a: Artifact): SparseInfo | undefined {
  return (a as { [SPARSE]?: SparseInfo })[SPARSE];
}

let tmpCounter = 0;

export class Cache {
  readonly cacheDir: string;
  readonly tmpRoot: string;
  readonly workRoot: string;
  readonly derivedRoot: string;
  readonly latestRoot: string;
  readonly locksRoot: string;
  readonly runsDir: string;
  readonly logsRoot: string;

  constructor(readonly root: string) {
    this.cacheDir = path.join(root, 'cache');
    this.tmpRoot = path.join(root, 'tmp');
    this.workRoot = path.join(root, 'work');
    this.derivedRoot = path.join(root, 'derived');
    this.latestRoot = path.join(root, 'latest');
    this.locksRoot = path.join(root, 'locks');
    this.runsDir = path.join(root, 'runs');
    this.logsRoot = path.join(root, 'logs');
  }

  async init(): Promise<void> {
    for (const d of [this.cacheDir, this.tmpRoot, this.workRoot, this.derivedRoot, this.latestRoot, this.locksRoot, this.runsDir, this.logsRoot]) {
      await mkdir(d, { recursive: true });
    }
  }

  entryDir(key: string): string {
    return path.join(this.cacheDir, key);
  }

  /**
   * The committed, complete artifact for a key, or undefined (also for a sparse entry: it is
   * never a cache hit). Reads only meta.json (and looks for sparse.json): no re-hashing.
   */
  async lookup(key: string): Promise<Artifact | undefined> {
    const a = await this.find(key);
    return a && !sparseOf(a) ? a : undefined;
  }

  /** The entry for a key, complete or sparse (then marked: see sparseOf), or undefined. */
  async find(key: string): Promise<Artifact | undefined> {
    const dir = this.entryDir(key);
    let meta: StoredMeta;
    try {
      meta = JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as StoredMeta;
    } catch {
      return undefined;
    }
    const artifact: Artifact = { kind: meta.kind, key, contentHash: meta.contentHash, dir: path.join(dir, 'data'), meta };
    const sparse = await readSparse(dir);
    if (sparse) Object.defineProperty(artifact, SPARSE, { value: sparse, enumerable: false });
    return artifact;
  }

  async readManifest(key: string): Promise<ManifestEntry[]> {
    return JSON.parse(await readFile(path.join(this.entryDir(key), 'manifest.json'), 'utf8')) as ManifestEntry[];
  }

  /** A fresh temp dir owned by this process; `data/` inside is where the stage writes. */
  async makeTemp(label: string): Promise<string> {
    const dir = path.join(this.tmpRoot, `${process.pid}-${++tmpCounter}-${label.replace(/[^A-Za-z0-9_-]/g, '_')}`);
    await mkdir(path.join(dir, 'data'), { recursive: true });
    return dir;
  }

  /** Seal a temp dir into cache/<key>. If another run committed the key first, theirs wins. */
  async commit(tmpDir: string, draft: MetaDraft): Promise<Artifact> {
    const dataDir = path.join(tmpDir, 'data');
    const manifest = await buildManifest(dataDir);
    const contentHash = contentHashOf(manifest);
    const meta: StoredMeta = { ...draft, contentHash };
    await writeFile(path.join(tmpDir, 'manifest.json'), JSON.stringify(manifest, null, 1));
    await writeFile(path.join(tmpDir, 'meta.json'), JSON.stringify(meta, null, 2));
    await fsyncTree(dataDir, manifest.map((m) => m.path));
    await fsyncPath(path.join(tmpDir, 'manifest.json'));
    await fsyncPath(path.join(tmpDir, 'meta.json'));
    await fsyncPath(tmpDir);
    const target = this.entryDir(draft.key);
    try {
      await rename(tmpDir, target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      const existing = await this.find(draft.key);
      const sparse = existing ? sparseOf(existing) : undefined;
      if (existing && sparse) await this.replaceSparse(existing, sparse, tmpDir, manifest, meta);
      await rm(tmpDir, { recursive: true, force: true });
    }
    await fsyncPath(this.cacheDir);
    const artifact = await this.lookup(draft.key);
    if (!artifact) throw new Error(`cache entry ${draft.key} vanished after commit`);
    return artifact;
  }

  /**
   * A whole artifact was made for a key that holds a sparse entry (the caller holds the key's
   * lock). Same content: the files the entry lacks move in, then it becomes complete (in place:
   * readers of its files never see one vanish). Other content (a non-deterministic stage):
   * the new entry replaces it.
   */
  private async replaceSparse(existing: Artifact, sparse: SparseInfo, tmpDir: string, manifest: readonly ManifestEntry[], meta: StoredMeta): Promise<void> {
    if (existing.contentHash === meta.contentHash) {
      const have = new Set(sparse.present);
      await this.extendSparse(meta.key, path.join(tmpDir, 'data'), manifest.map((m) => m.path).filter((p) => !have.has(p)), { meta });
      return;
    }
    const target = this.entryDir(meta.key);
    const doomed = path.join(this.tmpRoot, `${process.pid}-${++tmpCounter}-replaced`);
    await rename(target, doomed);
    try {
      await rename(tmpDir, target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /**
   * Seal a temp dir holding some of an artifact's files (data/) into a sparse entry: the full
   * manifest and meta, and sparse.json. The caller has verified every file against the manifest,
   * whose hash is the meta's content hash. If the key was committed meanwhile, that entry wins.
   */
  async commitSparse(tmpDir: string, meta: StoredMeta, manifest: readonly ManifestEntry[], sparse: Omit<SparseInfo, 'version' | 'presentBytes' | 'files' | 'bytes'>): Promise<Artifact> {
    const dataDir = path.join(tmpDir, 'data');
    const info = sparseInfo(manifest, sparse);
    await writeFile(path.join(tmpDir, 'manifest.json'), JSON.stringify(manifest, null, 1));
    await writeFile(path.join(tmpDir, 'meta.json'), JSON.stringify(meta, null, 2));
    await writeFile(path.join(tmpDir, SPARSE_FILE), JSON.stringify(info));
    await fsyncTree(dataDir, info.present);
    for (const f of ['manifest.json', 'meta.json', SPARSE_FILE]) await fsyncPath(path.join(tmpDir, f));
    await fsyncPath(tmpDir);
    try {
      await rename(tmpDir, this.entryDir(meta.key));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      await rm(tmpDir, { recursive: true, force: true });
    }
    await fsyncPath(this.cacheDir);
    const artifact = await this.find(meta.key);
    if (!artifact) throw new Error(`cache entry ${meta.key} vanished after commit`);
    return artifact;
  }

  /**
   * Add verified files (paths relative to `fromDir`, moved from there) to a sparse entry, in
   * place; the caller holds the key's lock. sparse.json is rewritten after the files are in;
   * once every file of the manifest is there (each checked by size) it is removed, last: the
   * entry is then complete. `meta` replaces meta.json (before that).
   */
  async extendSparse(
    key: string,
    fromDir: string,
    paths: readonly string[],
    update: { meta?: StoredMeta; reads?: readonly string[]; readers?: readonly string[] } = {},
  ): Promise<Artifact> {
    const entry = this.entryDir(key);
    const data = path.join(entry, 'data');
    const current = await readSparse(entry);
    if (!current) throw new Error(`cache entry ${key} is not a sparse entry`);
    for (const p of paths) {
      const dest = path.join(data, p);
      await mkdir(path.dirname(dest), { recursive: true });
      await rename(path.join(fromDir, p), dest);
    }
    await fsyncTree(data, paths);
    const manifest = await this.readManifest(key);
    const present = [...new Set([...current.present, ...paths])].sort();
    const info = sparseInfo(manifest, {
      reads: [...new Set([...current.reads, ...(update.reads ?? [])])].sort(),
      readers: [...new Set([...current.readers, ...(update.readers ?? [])])],
      remote: current.remote,
      present,
    });
    if (update.meta) await writeAtomic(path.join(entry, 'meta.json'), JSON.stringify(update.meta, null, 2));
    if (info.present.length < manifest.length) {
      await writeAtomic(path.join(entry, SPARSE_FILE), JSON.stringify(info));
    } else {
      for (const m of manifest) {
        let size = -1;
        try {
          size = (await stat(path.join(data, m.path))).size;
        } catch {
          // missing: below
        }
        if (size !== m.size) throw new Error(`cache entry ${key}: ${m.path} is ${size < 0 ? 'missing' : `${size} bytes, the manifest says ${m.size}`} after completing it`);
      }
      await rm(path.join(entry, SPARSE_FILE), { force: true });
      await fsyncPath(entry);
    }
    const artifact = await this.find(key);
    if (!artifact) throw new Error(`cache entry ${key} vanished while completing it`);
    return artifact;
  }

  /**
   * Hold the lock of a key while computing it, so two runs never compute one key twice. The lock
   * is a symlink locks/<key>.lock -> "<pid>@<host>", made atomically with its owner in it, so a
   * run that finds it held by a dead process of this host (kill -9, OOM) takes it over at once
   * instead of waiting for it to go stale; a holder refreshes the link's mtime every 5 s.
   */
  async lockKey(key: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    // Wait as long as the other run needs; abort ends the wait.
    for (;;) {
      const release = await this.tryLockKey(key);
      if (release) return release;
      if (signal?.aborted) throw new Error('interrupted');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** One attempt at lockKey: the release function, or undefined while a live run holds the key. */
  async tryLockKey(key: string): Promise<(() => Promise<void>) | undefined> {
    const file = path.join(this.locksRoot, `${key}.lock`);
    const me = `${process.pid}@${os.hostname()}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await symlink(me, file);
        const beat = setInterval(() => {
          const now = new Date();
          void lutimes(file, now, now).catch(() => undefined);
        }, 5_000);
        beat.unref();
        return async () => {
          clearInterval(beat);
          // Only our own lock: never one that another run took over meanwhile.
          if ((await readlink(file).catch(() => undefined)) === me) await rm(file, { force: true });
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // '' for a lock that is not a link (a directory left by the older proper-lockfile lock).
        const holder = await readlink(file).catch((err: NodeJS.ErrnoException) => (err.code === 'EINVAL' ? '' : undefined));
        if (holder === undefined || !(await holderGone(file, holder))) return undefined;
        // Re-read just before removing, so that only the dead holder's link goes. Two waiters
        // may still both take over: a key computed twice at worst, never a bad entry (the
        // commit is atomic and the first one wins).
        if ((await readlink(file).catch(() => '')) === holder) await rm(file, { recursive: true, force: true });
      }
    }
    return undefined;
  }

  /**
   * gc: removes the work dirs (a stage's checkpoints, a pull's staging) of keys that no live
   * run holds, each under that key's lock. Returns the names removed (or that would be).
   */
  async removeIdleWork(dryRun = false): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await safeReaddir(this.workRoot)) {
      const key = name.replace(/^pull-/, '');
      const release = await this.tryLockKey(key);
      if (!release) continue; // in use by a run
      try {
        if (!dryRun) await rm(path.join(this.workRoot, name), { recursive: true, force: true });
        removed.push(name);
      } finally {
        await release();
      }
    }
    return removed;
  }

  workDirFor(key: string): string {
    return path.join(this.workRoot, key);
  }

  /** Point latest/<pipeline>/<stage> at a committed artifact's data (atomic symlink swap). */
  async setLatest(pipeline: string, stage: string, key: string): Promise<void> {
    const dir = path.join(this.latestRoot, pipeline);
    await mkdir(dir, { recursive: true });
    const link = path.join(dir, stage);
    const target = path.relative(dir, path.join(this.entryDir(key), 'data'));
    const tmp = `${link}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    await symlink(target, tmp);
    await rename(tmp, link);
  }

  /** The key latest/<pipeline>/<stage> points at, if any. */
  async latestKey(pipeline: string, stage: string): Promise<string | undefined> {
    try {
      const target = await readlink(path.join(this.latestRoot, pipeline, stage));
      return path.basename(path.dirname(target));
    } catch {
      return undefined;
    }
  }

  /** Every key referenced from latest/ of any pipeline. */
  async referencedKeys(): Promise<Set<string>> {
    const keys = new Set<string>();
    for (const p of await safeReaddir(this.latestRoot)) {
      // `<stage>.<pid>.tmp` links are left by a run killed while swapping a link: not references.
      for (const s of (await safeReaddir(path.join(this.latestRoot, p))).filter((n) => !n.endsWith('.tmp'))) {
        const k = await this.latestKey(p, s);
        if (k) keys.add(k);
      }
    }
    return keys;
  }

  async listKeys(): Promise<string[]> {
    return (await safeReaddir(this.cacheDir)).filter((n) => /^[0-9a-f]{64}$/.test(n));
  }

  async verify(key: string): Promise<VerifyProblem[]> {
    return (await this.verifyEntry(key)).problems;
  }

  /**
   * Re-hash an entry's files against its manifest. A sparse entry is checked on what it holds:
   * every file under data/ must be in the manifest with its hash, every file sparse.json lists
   * must be there; the others are on the remote, not missing.
   */
  async verifyEntry(key: string): Promise<{ problems: VerifyProblem[]; sparse?: SparseInfo }> {
    let manifest: ManifestEntry[];
    try {
      manifest = await this.readManifest(key);
    } catch (e) {
      return { problems: [{ path: 'manifest.json', problem: `unreadable: ${(e as Error).message}` }] };
    }
    const data = path.join(this.entryDir(key), 'data');
    const sparse = await readSparse(this.entryDir(key));
    if (!sparse) return { problems: await verifyAgainstManifest(data, manifest) };
    let onDisk: string[];
    try {
      onDisk = await listFiles(data);
    } catch (e) {
      return { problems: [{ path: '.', problem: (e as Error).message }], sparse };
    }
    // Files on disk that the manifest lacks are reported by verifyAgainstManifest as such.
    const held = new Set([...sparse.present, ...onDisk]);
    return { problems: await verifyAgainstManifest(data, manifest.filter((m) => held.has(m.path))), sparse };
  }

  /**
   * A sub-artifact: built once per distinct (name, key), atomically, under a lock, so parallel
   * stages and runs never build the same features twice.
   */
  async derived(name: string, key: unknown, build: (dir: string) => Promise<void>, signal?: AbortSignal): Promise<string> {
    const safe = name.replace(/[^A-Za-z0-9_-]/g, '_');
    const dir = path.join(this.derivedRoot, `${safe}-${hashOf([name, key]).slice(0, 40)}`);
    if (existsSync(path.join(dir, '.complete'))) return dir;
    const release = await this.lockKey(`derived-${path.basename(dir)}`, signal);
    try {
      if (existsSync(path.join(dir, '.complete'))) return dir;
      const tmp = await this.makeTemp(`derived-${safe}`);
      try {
        const data = path.join(tmp, 'data');
        await build(data);
        await writeFile(path.join(data, '.complete'), JSON.stringify({ name, key }));
        await fsyncTree(data, await listFiles(data));
        await rm(dir, { recursive: true, force: true });
        await rename(data, dir);
        return dir;
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    } finally {
      await release();
    }
  }

  /** Remove temp dirs left by processes that no longer exist (crashed or killed runs). */
  async sweepTemp(): Promise<number> {
    let removed = 0;
    for (const name of await safeReaddir(this.tmpRoot)) {
      const pid = Number(name.split('-')[0]);
      if (pid === process.pid) continue;
      if (Number.isInteger(pid) && isAlive(pid)) continue;
      const dir = path.join(this.tmpRoot, name);
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
  async removeUnreferenced(key: string): Promise<boolean> {
    const release = await this.lockKey(key);
    try {
      if ((await this.referencedKeys()).has(key)) return false;
      await this.removeEntry(key);
      return true;
    } finally {
      await release();
    }
  }

  async removeEntry(key: string): Promise<void> {
    // Rename first so a concurrent reader never sees a half-deleted entry as valid.
    const doomed = path.join(this.tmpRoot, `${process.pid}-gc-${key}`);
    await rename(this.entryDir(key), doomed);
    await rm(doomed, { recursive: true, force: true });
  }

  /** Bytes an entry holds here (of a sparse entry: its present files). */
  async sizeOf(key: string): Promise<number> {
    const sparse = await readSparse(this.entryDir(key));
    if (sparse) return sparse.presentBytes;
    try {
      const manifest = await this.readManifest(key);
      return manifest.reduce((n, m) => n + m.size, 0);
    } catch {
      return 0;
    }
  }
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
async function readSparse(entryDir: string): Promise<SparseInfo | undefined> {
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

/** Replace a small file atomically: write a sibling, fsync, rename, fsync the folder. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await fsyncPath(tmp);
  await rename(tmp, file);
  await fsyncPath(path.dirname(file));
}

/**
 * A lock's holder is gone: a dead process of this host; or a link not refreshed for an hour
 * (this host: its pid was reused) or for a minute (another host sharing the cache dir).
 */
async function holderGone(file: string, holder: string): Promise<boolean> {
  let age: number;
  try {
    age = Date.now() - (await lstat(file)).mtimeMs;
  } catch {
    return false; // released meanwhile: try again
  }
  const at = holder.indexOf('@');
  const pid = Number(holder.slice(0, at));
  if (at > 0 && holder.slice(at + 1) === os.hostname() && Number.isInteger(pid)) return !isAlive(pid) || age > 3_600_000;
  return age > 60_000;
}

/**
 * Kill the processes (of a dead run) that still work in a temp dir: those with its PIPE_OUT in
 * their environment (command stages and all they started) or their working directory in it.
 * Linux /proc; elsewhere nothing to do. A few passes: a shell may fork while we look.
 */
async function killProcessesIn(dir: string): Promise<void> {
  const marker = `PIPE_OUT=${path.join(dir, 'data')}`;
  for (let pass = 0; pass < 5; pass++) {
    let found = 0;
    for (const p of await safeReaddir('/proc')) {
      if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
      let mine = false;
      try {
        const cwd = await readlink(`/proc/${p}/cwd`);
        mine = cwd === dir || cwd.startsWith(`${dir}${path.sep}`);
      } catch {
        // gone, or not ours to look at
      }
      if (!mine) {
        try {
          mine = (await readFile(`/proc/${p}/environ`, 'latin1')).split('\0').includes(marker);
        } catch {
          // gone, or not ours to look at
        }
      }
      if (!mine) continue;
      found++;
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (found === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether a process of this host with this pid exists (EPERM: it does, owned by another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function safeReaddir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

export async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}
