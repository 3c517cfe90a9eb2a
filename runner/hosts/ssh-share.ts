// OpenSSH connection sharing for the ssh and rsync calls to a host: the first call starts a
// master connection (ControlMaster=auto) that later calls, of this run or of another pipe run
// of the same cache, reuse for ControlPersist seconds after the last one ends. A stage on a host
// makes a dozen calls (probe, syncs, job, fetch, cleanup) and a Slurm job is polled once a
// second: each was a new TCP connection, key exchange and login.
//
// The master backgrounds itself with its stdio on /dev/null, so it holds no pipe a caller waits
// on and `pipe run` exits at once; it ends ControlPersist seconds after its last session, or as
// soon as its connection dies (ServerAliveInterval, or the host closing it). What goes wrong
// before a call's session opens, ssh itself answers with a connection of the call's own: a
// master killed outright (its socket left behind: removed, a new master started), a master
// dying as the call greets it, a host refusing the master one more session (sshd's MaxSessions,
// 10 by default, on a busy sweep). A call whose master dies during its session has lost its
// connection, as it would have without sharing.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync } from 'node:fs';
import type { SshTarget } from './ssh.js';

/** Seconds a master outlives its last session: a few stages' gap, not a session's worth. */
export const PERSIST_S = 30;

let dir: string | null | undefined;

/**
 * The sockets' folder: /tmp/pipe-ssh-<uid>, mode 0700 and ours, or none (no sharing). Not under
 * os.tmpdir() nor the cache: a unix socket's path is limited to about 104 bytes (macOS's TMPDIR
 * alone takes 50), and the cache holds artifacts, not sockets.
 */
export function controlDir(): string | undefined {
  if (dir !== undefined) return dir ?? undefined;
  dir = null;
  const uid = process.getuid?.();
  if (uid === undefined || process.env['PIPE_SSH_SHARE'] === '0') return undefined;
  const candidate = `/tmp/pipe-ssh-${uid}`;
  try {
    mkdirSync(candidate, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
  }
  try {
    // Another user's folder (made there first), a link, or one others can enter: not used.
    const st = lstatSync(candidate);
    if (st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) dir = candidate;
  } catch {
    // gone meanwhile: no sharing for this process
  }
  return dir ?? undefined;
}

/**
 * The options that share one connection per (user, host, port, key, known_hosts): the socket is
 * named by a hash of all of them, so a master checked against one cache's known_hosts never
 * serves another cache, and a master of one key never serves a call made with another.
 */
export function shareOptions(t: SshTarget): string[] {
  const folder = controlDir();
  if (!folder) return [];
  const id = createHash('sha256')
    .update(JSON.stringify([t.user, t.address, t.port, t.key ?? '', t.knownHosts]))
    .digest('hex')
    .slice(0, 24);
  return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${folder}/${id}`, '-o', `ControlPersist=${PERSIST_S}`];
}
