// A real OpenSSH server on loopback for tests: throwaway host and user keys in a temp dir, a
// free port, root login by key only. `available()` says why not where sshd cannot start.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile, mkdir, rm, chmod } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './daemon.js';

export const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  readonly port: number;
  readonly userKey: string;
  readonly dir: string;
  readonly pid: number;
  /** How many ssh connections the server has accepted so far (its log's `Accepted publickey` lines). */
  accepted(): number;
  /** Kill the server and every session under it (a dropped connection). */
  killAll(): void;
  close(): Promise<void>;
}

export function sshdUnavailable(): string | undefined {
  if (!existsSync(SSHD)) return `${SSHD} not installed (apt-get install openssh-server)`;
  for (const tool of ['ssh', 'ssh-keygen', 'rsync']) {
    if (spawnSync('which', [tool]).status !== 0) return `${tool} not installed`;
  }
  if (process.getuid?.() !== 0) return 'needs root (sshd with a private config runs as root here)';
  return undefined;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on ${port}`);
}

function descendants(pid: number): number[] {
  const out = spawnSync('ps', ['-e', '-o', 'pid=,ppid=']).stdout.toString();
  const children = new Map<number, number[]>();
  for (const line of out.trim().split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    if (p === undefined || pp === undefined) continue;
    children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const all: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    for (const c of children.get(p) ?? []) {
      all.push(c);
      todo.push(c);
    }
  }
  return all;
}

export interface SshdOptions {
  /** Files hidden from the server's sessions (a /dev/null bind mount in a private mount namespace): a host without them. */
  readonly hide?: readonly string[];
  /** A directory the sessions see at /usr/local/sbin, first on sshd's default PATH (stand-in tools). */
  readonly extraBin?: string;
  /** Environment of every session (sshd_config SetEnv). */
  readonly env?: Readonly<Record<string, string>>;
  /** More sshd_config lines (`MaxSessions 1`). */
  readonly config?: readonly string[];
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-sshd-'));
  await mkdir('/run/sshd', { recursive: true });
  const hostKey = path.join(dir, 'host_ed25519');
  const userKey = path.join(dir, 'user_ed25519');
  for (const k of [hostKey, userKey]) spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k]);
  await writeFile(path.join(dir, 'authorized_keys'), await import('node:fs/promises').then((f) => f.readFile(`${userKey}.pub`, 'utf8')));
  await chmod(userKey, 0o600);
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'StrictModes no',
      'UsePAM no',
      'Subsystem sftp internal-sftp',
      ...(opts.env && Object.keys(opts.env).length
        ? [
            `SetEnv ${Object.entries(opts.env)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`,
          ]
        : []),
      ...(opts.config ?? []),
      '',
    ].join('\n'),
  );
  // Mounts made in a private namespace (unshare -m) are seen by this sshd's sessions only.
  const mounts = [...(opts.hide ?? []).map((f) => `mount --bind /dev/null ${f}`), ...(opts.extraBin ? [`mount --bind ${opts.extraBin} /usr/local/sbin`] : [])];
  const child: ChildProcess = mounts.length
    ? spawn('unshare', ['-m', 'sh', '-c', `${mounts.join(' && ')} && exec ${SSHD} -D -e -f ${config}`], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port, 5000);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}: ${stderr}`);
  }
  const pid = child.pid!;
  const killAll = (): void => {
    for (const p of [pid, ...descendants(pid)]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  return {
    port,
    userKey,
    dir,
    pid,
    accepted: () => stderr.match(/^Accepted publickey /gm)?.length ?? 0,
    killAll,
    async close() {
      killAll();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
