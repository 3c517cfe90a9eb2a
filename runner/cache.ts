// The content-addressed artifact store under `.pipe/`:
//   cache/<key>/{data/, manifest.json, meta.json}   committed artifacts (immutable)
//   cache/<key>/sparse.json                         ...or a sparse entry: a partial pull (sparse.ts)
//   derived/<name>-<hash>/                          sub-artifacts stages ask for (features, weights)
//   tmp/<pid>-<n>/                                  work in progress; never read as a result
//   work/<key>/                                     a stage's resumable scratch (checkpoints)
//   latest/<pipeline>/<stage>                       symlink to the newest artifact's data/
//   locks/                                          one lock per key being computed
// A commit is: stage writes tmp/<id>/data, the runner writes the manifest and meta, fsyncs,
// and renames tmp/<id> to cache/<key>. A crash at any instant leaves nothing or a whole entry.
// Locks: key-lock.ts; sparse entries (partial pulls, never a cache hit): sparse.ts; what gc and
// a run's start remove (unreferenced entries, idle work, dead temp dirs): cache-gc.ts.
import { mkdir, readFile, rename, rm, writeFile, symlink, readlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Artifact, ManifestEntry } from './types.js';
import { buildManifest, contentHashOf, fsyncPath, fsyncTree, listFiles, verifyAgainstManifest, type VerifyProblem } from './manifest.js';
import { hashOf } from './canonical.js';
import { makeReadOnly, READ_ONLY, safeReaddir } from './fs-util.js';
import { parseMeta, shapeOf, structuralDamage } from './entry-check.js';
import { lockFile, tryLockFile, type Release } from './key-lock.js';
import { markSparse, readSparse, replaceSparse, sparseOf, type SparseInfo } from './sparse.js';
import type { EntryStore, MetaDraft, StoredMeta } from './cache-meta.js';

export type { MetaDraft, StoredMeta } from './cache-meta.js';

let tmpCounter = 0;

/** The file that marks a derived folder complete: its name, key and manifest (derived-check.ts). */
export const DERIVED_COMPLETE = '.complete';

export class Cache implements EntryStore {
  readonly cacheDir: string;
  readonly tmpRoot: string;
  readonly workRoot: string;
  readonly derivedRoot: string;
  readonly latestRoot: string;
  /** sweeps/<sweep>/<n>-<values>/<stage>: each sweep combination's artifacts (runner/sweep-links.ts). */
  readonly sweepsRoot: string;
  readonly locksRoot: string;
  readonly runsDir: string;
  readonly logsRoot: string;
  /** Keys whose entry passed the structural check in this process. */
  private readonly whole = new Set<string>();
  /** Keys whose entry failed it, and why. */
  private readonly damaged = new Map<string, string>();

  constructor(readonly root: string) {
    this.cacheDir = path.join(root, 'cache');
    this.tmpRoot = path.join(root, 'tmp');
    this.workRoot = path.join(root, 'work');
    this.derivedRoot = path.join(root, 'derived');
    this.latestRoot = path.join(root, 'latest');
    this.sweepsRoot = path.join(root, 'sweeps');
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

  /**
   * The entry for a key, complete or sparse (then marked: see sparseOf), or undefined. A
   * complete entry that fails the structural check (entry-check.ts) is undefined too: it is
   * never served, damageOf says why, and the next commit of its key replaces it.
   */
  async find(key: string): Promise<Artifact | undefined> {
    const dir = this.entryDir(key);
    let text: string;
    try {
      text = await readFile(path.join(dir, 'meta.json'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || existsSync(dir)) this.noteDamage(key, 'meta.json is missing or unreadable');
      return undefined;
    }
    const meta = parseMeta<StoredMeta>(text);
    if (!meta) return this.noteDamage(key, 'meta.json does not parse');
    const artifact: Artifact = { kind: meta.kind, key, contentHash: meta.contentHash, dir: path.join(dir, 'data'), meta };
    const sparse = await readSparse(dir);
    if (sparse) return markSparse(artifact, sparse);
    // Checked once per process: a plan and then a run look up the same keys.
    if (!this.whole.has(key)) {
      const damage = await structuralDamage(dir, meta.shape);
      if (damage) return this.noteDamage(key, damage);
      this.whole.add(key);
    }
    return artifact;
  }

  /** Why the entry of a key was not served (the structural check failed), if it was not. */
  damageOf(key: string): string | undefined {
    return this.damaged.get(key);
  }

  private noteDamage(key: string, why: string): undefined {
    this.damaged.set(key, why);
    this.whole.delete(key);
    return undefined;
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

  /**
   * Seal a temp dir into cache/<key>. If another run committed the key first, theirs wins,
   * unless `replace` (a forced run: its output becomes the entry) or theirs is damaged; the new
   * entry is then swapped in (swapIn). The caller holds the key's lock.
   */
  async commit(tmpDir: string, draft: MetaDraft, options: { replace?: boolean } = {}): Promise<Artifact> {
    const manifest = await buildManifest(path.join(tmpDir, 'data'));
    const meta: StoredMeta = { ...draft, contentHash: contentHashOf(manifest) };
    if (
      !(await this.seal(
        tmpDir,
        meta,
        manifest,
        manifest.map((m) => m.path),
      ))
    ) {
      const existing = await this.find(draft.key);
      const sparse = existing ? sparseOf(existing) : undefined;
      if (existing && sparse) await replaceSparse(this, existing, sparse, tmpDir, manifest, meta);
      else if (!existing || options.replace) await this.swapIn(tmpDir, draft.key);
      await rm(tmpDir, { recursive: true, force: true });
    }
    await fsyncPath(this.cacheDir);
    const artifact = await this.lookup(draft.key);
    if (!artifact) throw new Error(`cache entry ${draft.key} vanished after commit`);
    return artifact;
  }

  /**
   * Writes manifest.json and meta.json (and any `extra` files) into a temp dir, fsyncs them, the
   * `dataPaths` under data/ and the dir, and renames it to cache/<key>. False when the key was
   * committed meanwhile (the temp dir is then still there, for the caller to deal with).
   */
  async seal(
    tmpDir: string,
    meta: StoredMeta,
    manifest: readonly ManifestEntry[],
    dataPaths: readonly string[],
    extra: Readonly<Record<string, string>> = {},
  ): Promise<boolean> {
    const manifestText = JSON.stringify(manifest, null, 1);
    const sealed: StoredMeta = { ...meta, shape: shapeOf(manifest, manifestText) };
    const files: Record<string, string> = { 'manifest.json': manifestText, 'meta.json': JSON.stringify(sealed, null, 2), ...extra };
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(tmpDir, name), text, { mode: READ_ONLY });
    // Every committed file is read-only: the cache is never edited in place (hard links to it, as split makes, stay safe).
    await makeReadOnly(path.join(tmpDir, 'data'), dataPaths);
    await fsyncTree(path.join(tmpDir, 'data'), dataPaths);
    for (const name of Object.keys(files)) await fsyncPath(path.join(tmpDir, name));
    await fsyncPath(tmpDir);
    try {
      await rename(tmpDir, this.entryDir(meta.key));
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      return false;
    }
  }

  /**
   * Replace cache/<key> by a sealed temp dir: the old entry is renamed away, the new one renamed
   * in, the old one removed. A reader sees the old entry, none for an instant (a miss: a run
   * then waits for the key's lock and finds the new one), or the new one; never a mix. A crash
   * in between leaves no entry (the key is recomputed) and the old one in tmp/ (swept).
   */
  async swapIn(tmpDir: string, key: string): Promise<void> {
    const target = this.entryDir(key);
    const doomed = path.join(this.tmpRoot, `${process.pid}-${++tmpCounter}-replaced-${key.slice(0, 16)}`);
    const moved = await rename(target, doomed).then(
      () => true,
      (e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
        return false;
      },
    );
    try {
      await rename(tmpDir, target);
    } catch (e) {
      // Another run committed the key in between: that entry is whole too.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
    this.whole.delete(key);
    this.damaged.delete(key);
    if (moved) await rm(doomed, { recursive: true, force: true });
  }

  /** Hold the lock of a key while computing it (see key-lock.ts); abort ends the wait. */
  lockKey(key: string, signal?: AbortSignal): Promise<Release> {
    return lockFile(path.join(this.locksRoot, `${key}.lock`), signal);
  }

  /** One attempt at lockKey: undefined while a live run holds the key. */
  tryLockKey(key: string): Promise<Release | undefined> {
    return tryLockFile(path.join(this.locksRoot, `${key}.lock`));
  }

  workDirFor(key: string): string {
    return path.join(this.workRoot, key);
  }

  /** Point latest/<pipeline>/<stage> at a committed artifact's data (atomic symlink swap). */
  async setLatest(pipeline: string, stage: string, key: string): Promise<void> {
    await this.linkEntry(key, path.join(this.latestRoot, pipeline, stage));
  }

  /** Make `link` a relative symlink to entry `key`'s data, swapped in atomically (latest/, sweeps/). */
  async linkEntry(key: string, link: string): Promise<void> {
    const dir = path.dirname(link);
    await mkdir(dir, { recursive: true });
    const tmp = `${link}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    await symlink(path.relative(dir, path.join(this.entryDir(key), 'data')), tmp);
    await rename(tmp, link);
  }

  /** The key a link made by linkEntry points at, if it is one. */
  async linkedKey(link: string): Promise<string | undefined> {
    const target = await readlink(link).catch(() => undefined);
    return target === undefined ? undefined : path.basename(path.dirname(target));
  }

  /** The key latest/<pipeline>/<stage> points at, if any. */
  async latestKey(pipeline: string, stage: string): Promise<string | undefined> {
    return this.linkedKey(path.join(this.latestRoot, pipeline, stage));
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
    return {
      problems: await verifyAgainstManifest(
        data,
        manifest.filter((m) => held.has(m.path)),
      ),
      sparse,
    };
  }

  /**
   * A sub-artifact: built once per distinct (name, key), atomically, under a lock, so parallel
   * stages and runs never build the same features twice.
   */
  async derived(name: string, key: unknown, build: (dir: string) => Promise<void>, signal?: AbortSignal): Promise<string> {
    const safe = name.replace(/[^A-Za-z0-9_-]/g, '_');
    const dir = path.join(this.derivedRoot, `${safe}-${hashOf([name, key]).slice(0, 40)}`);
    if (existsSync(path.join(dir, DERIVED_COMPLETE))) return dir;
    const release = await this.lockKey(`derived-${path.basename(dir)}`, signal);
    try {
      if (existsSync(path.join(dir, DERIVED_COMPLETE))) return dir;
      const tmp = await this.makeTemp(`derived-${safe}`);
      try {
        const data = path.join(tmp, 'data');
        await build(data);
        // The manifest lets `pipe verify` check a derived folder as it checks an entry.
        const manifest = await buildManifest(data);
        await makeReadOnly(
          data,
          manifest.map((m) => m.path),
        );
        await writeFile(path.join(data, DERIVED_COMPLETE), JSON.stringify({ name, key, manifest }), { mode: READ_ONLY });
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

  async removeEntry(key: string): Promise<void> {
    // Rename first so a concurrent reader never sees a half-deleted entry as valid.
    const doomed = path.join(this.tmpRoot, `${process.pid}-gc-${key}`);
    await rename(this.entryDir(key), doomed);
    this.whole.delete(key);
    this.damaged.delete(key);
    await rm(doomed, { recursive: true, force: true });
  }
}
