// The lock of a cache key while it is computed, so two runs never compute one key twice. The lock
// is a symlink locks/<key>.lock -> "<pid>@<host>", made atomically with its owner in it, so a run
// that finds it held by a dead process of this host (kill -9, OOM) takes it over at once instead
// of waiting for it to go stale; a holder refreshes the link's mtime every 5 s.
import { lstat, lutimes, readlink, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import { isAlive } from './processes.js';

export type Release = () => Promise<void>;

/** Waits as long as the holder needs; abort ends the wait. */
export async function lockFile(file: string, signal?: AbortSignal): Promise<Release> {
  for (;;) {
    const release = await tryLockFile(file);
    if (release) return release;
    if (signal?.aborted) throw new Error('interrupted');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One attempt: the release function, or undefined while a live holder has the lock. */
export async function tryLockFile(file: string): Promise<Release | undefined> {
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
