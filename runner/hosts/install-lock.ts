// One pipe installation at a time on a host: two runs syncing and `npm ci`-ing into the same
// tool dir at once would delete each other's node_modules. The lock is a `flock` on
// <root>/install.lock held by an ssh session that lasts until we close its stdin: when this
// process ends, even by kill -9, its ssh client sees stdin close, the session ends and the kernel
// frees the lock. So a lock is never stale: its holder is gone exactly when it is free. A waiter
// says whose install it waits for, and gives up after WAIT_S with a clear message.
import { execa } from 'execa';
import os from 'node:os';
import path from 'node:path';
import { StageError, type Logger } from '../types.js';
import { destination, shq, sshOptions, type SshTarget } from './ssh.js';

/** How long a run waits for another's install on the same host (an install of the CUDA build takes minutes). */
export const WAIT_S = 1800;

export interface HostLockOptions {
  readonly target: SshTarget;
  readonly where: string;
  readonly root: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Seconds to wait for the lock (tests). */
  readonly waitS?: number;
}

/** The remote script: take the lock (saying whom it waits for), then hold it until stdin closes. */
export function lockScript(root: string, owner: string, waitS: number): string {
  const lock = path.posix.join(root, 'install.lock');
  return [
    `mkdir -p ${shq(root)} || exit 1`,
    // No flock (not util-linux): no lock, as before; say so once.
    'command -v flock >/dev/null 2>&1 || { echo no-flock; exec cat >/dev/null; }',
    `exec 9>>${shq(lock)}`,
    `if ! flock -n 9; then echo "waiting=$(cat ${shq(`${lock}.owner`)} 2>/dev/null)"; flock -w ${waitS} 9 || { echo timeout; exit 98; }; fi`,
    `echo ${shq(owner)} > ${shq(`${lock}.owner`)}`,
    'echo locked',
    // cat inherits fd 9: the lock is held until our end of stdin closes.
    'exec cat >/dev/null',
  ].join('\n');
}

/** Takes the host's install lock; resolves to its release. */
export async function lockHostInstall(o: HostLockOptions): Promise<() => Promise<void>> {
  const owner = `pipe pid ${process.pid} on ${os.hostname()} since ${new Date().toISOString()}`;
  const child = execa('ssh', [...sshOptions(o.target), destination(o.target), lockScript(o.root, owner, o.waitS ?? WAIT_S)], {
    reject: false,
    stdin: 'pipe',
    buffer: { stdout: false, stderr: true },
    ...(o.signal ? { cancelSignal: o.signal } : {}),
  });
  const release = async (): Promise<void> => {
    child.stdin?.end();
    await child;
  };
  const state = await new Promise<{ kind: 'locked' | 'no-flock' } | { kind: 'ended' }>((resolve) => {
    let pending = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('waiting='))
          o.log.info(`waiting for another pipe's install on ${o.where} to finish (${line.slice('waiting='.length) || 'holder unknown'})`);
        else if (line === 'locked' || line === 'no-flock') resolve({ kind: line });
      }
    });
    void child.then(() => resolve({ kind: 'ended' }));
  });
  if (state.kind === 'locked') return release;
  if (state.kind === 'no-flock') {
    o.log.debug(`no flock on ${o.where}: installing without the host lock`);
    return release;
  }
  const r = await child;
  if (r.exitCode === 255) throw new StageError(`connection to host ${o.where} lost while waiting for its install lock`);
  if (o.signal.aborted) throw new StageError('interrupted');
  if (r.exitCode === 98) {
    throw new StageError(
      `another pipe run has been installing on ${o.where} for over ${Math.round((o.waitS ?? WAIT_S) / 60)} min (${path.posix.join(o.root, 'install.lock')})`,
      'let it finish, or stop the pipe run that holds it',
    );
  }
  throw new StageError(
    `taking the install lock on ${o.where} failed (exit ${r.exitCode}): ${
      String(r.stderr ?? '')
        .trim()
        .split('\n')
        .pop() ?? ''
    }`,
  );
}
