// The content-addressed artifact store under `.pipe/`:
//   cache/<key>/{data/, manifest.json, meta.json}   committed artifacts (immutable)
//   derived/<name>-<hash>/                          sub-artifacts stages ask for (features, weights)
//   tmp/<pid>-<n>/                                  work in progress; never read as a result
//   work/<key>/                                     a stage's resumable scratch (checkpoints)
//   latest/<pipeline>/<stage>                       symlink to the newest artifact's data/
//   locks/                                          one lock per key being computed
// A commit is: stage writes tmp/<id>/data, the runner writes the manifest and meta, fsyncs,
// and renames tmp/<id> to cache/<key>. A crash at any instant leaves nothing or a whole entry.
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

  /** The committed artifact for a key, or undefined. Reads only meta.json: no re-hashing. */
  async lookup(key: string): Promise<Artifact | undefined> {
    const dir = this.entryDir(key);
    let meta: StoredMeta;
    try {
      meta = JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as StoredMeta;
    } catch {
      return undefined;
    }
    return { kind: meta.kind, key, contentHash: meta.contentHash, dir: path.join(dir, 'data'), meta };
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
      await rm(tmpDir, { recursive: true, force: true });
    }
    await fsyncPath(this.cacheDir);
    const artifact = await this.lookup(draft.key);
    if (!artifact) throw new Error(`cache entry ${draft.key} vanished after commit`);
    return artifact;
  }

  /**
   * Hold the lock of a key while computing it, so two runs never compute one key twice. The lock
   * is a symlink locks/<key>.lock -> "<pid>@<host>", made atomically with its owner in it, so a
   * run that finds it held by a dead process of this host (kill -9, OOM) takes it over at once
   * instead of waiting for it to go stale; a holder refreshes the link's mtime every 5 s.
   */
  async lockKey(key: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    const file = path.join(this.locksRoot, `${key}.lock`);
    const me = `${process.pid}@${os.hostname()}`;
    // Wait as long as the other run needs; abort ends the wait.
    for (;;) {
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
        if (signal?.aborted) throw new Error('interrupted');
        // '' for a lock that is not a link (a directory left by the older proper-lockfile lock).
        const holder = await readlink(file).catch((err: NodeJS.ErrnoException) => (err.code === 'EINVAL' ? '' : undefined));
        if (holder !== undefined && (await holderGone(file, holder))) {
          // Re-read just before removing, so that only the dead holder's link goes. Two waiters
          // may still both take over: a key computed twice at worst, never a bad entry (the
          // commit is atomic and the first one wins).
          if ((await readlink(file).catch(() => '')) === holder) await rm(file, { recursive: true, force: true });
          continue;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
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
    let manifest: ManifestEntry[];
    try {
      manifest = await this.readManifest(key);
    } catch (e) {
      return [{ path: 'manifest.json', problem: `unreadable: ${(e as Error).message}` }];
    }
    return verifyAgainstManifest(path.join(this.entryDir(key), 'data'), manifest);
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

  async removeEntry(key: string): Promise<void> {
    // Rename first so a concurrent reader never sees a half-deleted entry as valid.
    const doomed = path.join(this.tmpRoot, `${process.pid}-gc-${key}`);
    await rename(this.entryDir(key), doomed);
    await rm(doomed, { recursive: true, force: true });
  }

  async sizeOf(key: string): Promise<number> {
    try {
      const manifest = await this.readManifest(key);
      return manifest.reduce((n, m) => n + m.size, 0);
    } catch {
      return 0;
    }
  }
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

function isAlive(pid: number): boolean {
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
