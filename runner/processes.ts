// Processes of this host: whether one lives, and killing what a dead run left working.
import { readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { safeReaddir } from './fs-util.js';

/** Whether a process of this host with this pid exists (EPERM: it does, owned by another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kill the processes (of a dead run) that still work in a temp dir: those with its PIPE_OUT in
 * their environment (command stages and all they started) or their working directory in it.
 * Linux /proc; elsewhere nothing to do. A few passes: a shell may fork while we look.
 */
export async function killProcessesIn(dir: string): Promise<void> {
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
