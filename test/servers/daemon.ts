// What the real-daemon test servers (sshd.ts, slurm.ts) share: a free loopback port to give a
// daemon, and stopping a daemon started in the background by the pid it wrote.
import { readFile } from 'node:fs/promises';
import net from 'node:net';

/** A port free on 127.0.0.1 now (the OS picks it; free again once this listener closes). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Stop the daemon whose pid is in `pidFile` by SIGTERM and wait up to 3 s for it to go; nothing when the file or the process is gone. */
export async function stopByPidFile(pidFile: string): Promise<void> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!(pid > 0)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  for (let i = 0; i < 30; i++) {
    try {
      process.kill(pid, 0);
      await sleep(100);
    } catch {
      break;
    }
  }
}
