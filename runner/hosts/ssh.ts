// ssh and rsync to a stage's host, through execa. Host keys are pinned in a known_hosts file of
// the cache (accept-new: a new instance's key is learned once, a changed one is refused). The
// calls to one host share one connection (ssh-share.ts).
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import { shareOptions } from './ssh-share.js';

export interface SshTarget {
  readonly address: string;
  readonly user: string;
  readonly port: number;
  /** Path of the private key; none: ssh's defaults and agent. */
  readonly key?: string;
  /** known_hosts file owned by pipe. */
  readonly knownHosts: string;
  /** This machine itself (a Slurm cluster whose submit host is here): commands run in a local shell, rsync copies locally. */
  readonly local?: boolean;
}

export function sshOptions(t: SshTarget): string[] {
  return [
    ...shareOptions(t),
    '-p',
    String(t.port),
    ...(t.key ? ['-i', t.key, '-o', 'IdentitiesOnly=yes'] : []),
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    `UserKnownHostsFile=${t.knownHosts}`,
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=15',
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'ServerAliveCountMax=3',
  ];
}

export function destination(t: SshTarget): string {
  return `${t.user}@${t.address}`;
}

/** Single-quote for the remote shell. */
export function shq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export interface RemoteRun {
  readonly exitCode: number | undefined;
  readonly stderr: string;
}

/**
 * Run a command on the host, streaming stdout line by line. Exit 255 = ssh's own failure.
 * `input`: written to the remote command's stdin (secrets travel this way, never in `command`).
 */
export async function sshRun(
  t: SshTarget,
  command: string,
  opts: { signal?: AbortSignal; onLine?: (line: string) => void; input?: string } = {},
): Promise<RemoteRun> {
  const child: ResultPromise = execa(...shellArgs(t, command), {
    reject: false,
    buffer: { stdout: false, stderr: true },
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
  });
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) opts.onLine?.(line);
  });
  const result = await child;
  if (pending) opts.onLine?.(pending);
  return { exitCode: result.exitCode, stderr: String(result.stderr ?? '') };
}

/** The program and arguments that run `command` on the host (ssh, or bash here for a local target). */
export function shellArgs(t: SshTarget, command: string): [string, string[]] {
  return t.local ? ['bash', ['-c', command]] : ['ssh', [...sshOptions(t), destination(t), command]];
}

/** rsync's `-e` and the remote side of a path: none for a local target. */
function remotePath(t: SshTarget, p: string): string {
  return t.local ? p : `${destination(t)}:${p}`;
}

function rsyncShell(t: SshTarget): string[] {
  if (t.local) return [];
  return ['-e', rsyncShellCommand(t)];
}

function rsyncShellCommand(t: SshTarget): string {
  return ['ssh', ...sshOptions(t)].map((a) => (/[\s'"]/.test(a) ? shq(a) : a)).join(' ');
}

/**
 * rsync a local directory's contents into a remote directory (created as needed). `lock`: a file
 * on the host that serializes syncs into the same directory (two runs at once: one rsync --delete
 * would remove the other's temp files, or files it is about to read). A host without flock
 * (util-linux; macOS has none) syncs unlocked, as before locks existed.
 */
export async function rsyncUp(
  t: SshTarget,
  localDir: string,
  remoteDir: string,
  opts: { signal?: AbortSignal; exclude?: string[]; delete?: boolean; lock?: string } = {},
): Promise<void> {
  const args = [
    '-a',
    '--partial',
    '--mkpath',
    ...(opts.lock && !t.local ? [`--rsync-path=${lockedRsync(opts.lock)}`] : []),
    ...(opts.delete ? ['--delete'] : []),
    ...(opts.exclude ?? []).flatMap((e) => ['--exclude', e]),
    ...rsyncShell(t),
    `${path.resolve(localDir)}/`,
    `${remotePath(t, remoteDir)}/`,
  ];
  // Here (a local Slurm submit host): this machine's rsync under flock.
  if (t.local && opts.lock) await runRsync(['-w', '600', opts.lock, 'rsync', ...args], opts.signal, 'flock');
  else await runRsync(args, opts.signal);
}

/** The host's side of rsync under `flock` on `lock` when the host has flock, else plain rsync (shell text). */
function lockedRsync(lock: string): string {
  const script = `[ -x "$(command -v flock)" ] && exec flock -w 600 ${shq(lock)} "$@"; exec "$@"`;
  return `sh -c ${shq(script)} pipe-sync rsync`;
}

export async function rsyncDown(t: SshTarget, remoteDir: string, localDir: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const args = ['-a', '--partial', ...rsyncShell(t), `${remotePath(t, remoteDir)}/`, `${path.resolve(localDir)}/`];
  await runRsync(args, opts.signal);
}

async function runRsync(args: string[], signal?: AbortSignal, program = 'rsync'): Promise<void> {
  const r = await execa(program, args, { reject: false, stdin: 'ignore', ...(signal ? { cancelSignal: signal } : {}) });
  if (r.exitCode !== 0) {
    const why = String(r.stderr ?? '')
      .trim()
      .split('\n')
      .slice(-2)
      .join(' ');
    const lost = r.exitCode === 255 || r.exitCode === 12 || /connection|closed|reset|broken pipe/i.test(why);
    throw new Error(lost ? `connection to the host lost during rsync (${why || `exit ${r.exitCode}`})` : `rsync failed (exit ${r.exitCode}): ${why}`);
  }
}
