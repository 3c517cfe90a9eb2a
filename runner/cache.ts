// The content-addressed artifact store under `.pipe/`:
//   cache/<key>/{data/, manifest.json, meta.json}   committed artifacts (immutable)
//   derived/<name>-<hash>/                          sub-artifacts stages ask for (features, weights)
//   tmp/<pid>-<n>/                                  work in progress; never read as a result
//   work/<key>/                                     a stage's resumable scratch (checkpoints)
//   latest/<pipeline>/<stage>                       symlink to the newest artifact's data/
//   locks/                                          one lock per key being computed
// A commit is: stage writes tmp/<id>/data, the runner writes the manifest and meta, fsyncs,
// and renames tmp/<id> to cache/<key>. A crash at any instant leaves nothing or a whole entry.
import { mkdir, readFile, rename, rm, writeFile, readdir, symlink, readlink, stat, lstat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
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

  /** Hold the lock of a key while computing it, so two runs never compute one key twice. */
  async lockKey(key: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    const file = path.join(this.locksRoot, key);
    const owner = `${file}.owner`;
    await writeFile(file, '', { flag: 'a' });
    // Wait as long as the other run needs; abort ends the wait. A lock whose owner is a dead
    // process on this host (kill -9) is taken over at once instead of after the stale timeout.
    for (;;) {
      try {
        const release = await lockfile.lock(file, { stale: 20_000, update: 5_000, realpath: false, retries: 0 });
        await writeFile(owner, `${os.hostname()} ${process.pid}`).catch(() => undefined);
        return release;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
        if (signal?.aborted) throw new Error('interrupted');
        const [host, pid] = (await readFile(owner, 'utf8').catch(() => '')).split(' ');
        if (host === os.hostname() && Number(pid) > 0 && !isAlive(Number(pid))) {
          await rm(`${file}.lock`, { recursive: true, force: true });
          await rm(owner, { force: true });
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
      for (const s of await safeReaddir(path.join(this.latestRoot, p))) {
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
      if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) continue;
      if (pid === process.pid) continue;
      const dir = path.join(this.tmpRoot, name);
      // A stage process of a killed run may still be writing there: stop it first.
      await killProcessesIn(dir);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      removed++;
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

/** Kill processes whose working directory is inside `dir` (Linux /proc; elsewhere a no-op). */
async function killProcessesIn(dir: string): Promise<void> {
  const pids = await safeReaddir('/proc');
  for (const p of pids) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const cwd = await readlink(`/proc/${p}/cwd`).catch(() => undefined);
    if (cwd && (cwd === dir || cwd.startsWith(`${dir}/`))) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
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
