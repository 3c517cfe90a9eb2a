// Is the host's SSH server up? "running" in EC2 only means the VM started: sshd comes a minute
// later. This polls the port until a connection delivers an SSH identification line
// ("SSH-2.0-OpenSSH_9.2"), which proves sshd itself answers (not a half-open forwarder).
import net from 'node:net';
import { StageError } from '../../types.js';

export interface SshProbeResult {
  /** The server's identification line, e.g. "SSH-2.0-OpenSSH_9.2p1". */
  readonly banner: string;
}

/**
 * One attempt: connect, read up to the identification line, close. Rejects with a short reason
 * (ECONNREFUSED, timeout, "no SSH banner") otherwise. RFC 4253 allows other lines before it.
 */
export function probeSsh(host: string, port: number, timeoutMs: number): Promise<SshProbeResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let buffered = '';
    let settled = false;
    const finish = (error: Error | undefined, banner?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve({ banner: banner ?? '' });
    };
    const timer = setTimeout(() => finish(new Error(buffered ? 'no SSH banner (timeout)' : 'timeout')), timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      for (const raw of lines.slice(0, -1)) {
        const line = raw.replace(/\r$/, '');
        if (line.startsWith('SSH-2.0-') || line.startsWith('SSH-1.99-')) return finish(undefined, line);
      }
      if (buffered.length > 8192) finish(new Error('no SSH banner in the first 8 KiB'));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => finish(new Error(e.code ?? e.message)));
    socket.on('end', () => finish(new Error(buffered ? 'connection closed without an SSH banner' : 'connection closed')));
  });
}

export interface SshWaitOptions {
  readonly host: string;
  readonly port: number;
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** Pause between attempts (default 3 s). */
  readonly intervalMs?: number;
  /** One attempt's limit (default 5 s, capped by what is left). */
  readonly attemptTimeoutMs?: number;
  /** For the error message: which instance and where to look. */
  readonly instanceId?: string;
  readonly region?: string;
  readonly signal?: AbortSignal;
  /** Called after each failed attempt (for progress lines). */
  readonly onAttempt?: (attempt: number, reason: string) => void;
}

export interface SshWaitResult extends SshProbeResult {
  readonly attempts: number;
  readonly elapsedMs: number;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Poll until SSH answers; a StageError naming the instance and how to investigate otherwise. */
export async function waitForSsh(options: SshWaitOptions): Promise<SshWaitResult> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  const interval = options.intervalMs ?? 3000;
  let attempts = 0;
  let lastReason = 'no attempt made';
  for (;;) {
    if (options.signal?.aborted) throw new StageError('interrupted');
    attempts++;
    const left = deadline - Date.now();
    try {
      const r = await probeSsh(options.host, options.port, Math.max(50, Math.min(options.attemptTimeoutMs ?? 5000, left)));
      return { ...r, attempts, elapsedMs: Date.now() - started };
    } catch (e) {
      lastReason = (e as Error).message;
      options.onAttempt?.(attempts, lastReason);
    }
    if (Date.now() + interval >= deadline) break;
    await sleep(interval, options.signal);
  }
  if (options.signal?.aborted) throw new StageError('interrupted');
  const seconds = Math.round(options.timeoutMs / 1000);
  const target = `${options.host}:${options.port}`;
  const id = options.instanceId;
  const region = options.region ? ` --region ${options.region}` : '';
  throw new StageError(
    `SSH on ${target}${id ? ` (instance ${id})` : ''} did not answer within ${seconds}s after ${attempts} attempt${attempts === 1 ? '' : 's'} (last: ${lastReason})`,
    id
      ? `look at the boot log: \`aws ec2 get-console-output --instance-id ${id}${region} --latest --output text\` (or EC2 console > Instance > Monitor and troubleshoot > Get system log); check that the security group allows tcp/${options.port} from your address (\`ssh_cidr\`) and that the subnet gives a public IP; raise \`ssh_wait_seconds\` for slow boots`
      : `check that sshd runs on ${target} and that a firewall lets you reach it`,
  );
}

/** Where and how to reach a host over SSH; what the runner needs from a `host` artifact. */
export interface SshTarget {
  readonly address: string;
  readonly sshUser?: string;
  readonly sshPort?: number;
  readonly sshKey?: string;
}

/**
 * `ssh` options for a host (without the command): key, port, non-interactive, and a
 * pipe-owned known_hosts file so a new instance's host key is accepted on first use without
 * touching ~/.ssh/known_hosts. The last element is `user@address`.
 */
export function sshArgs(target: SshTarget, options: { knownHostsFile?: string; connectTimeoutS?: number } = {}): string[] {
  const args = ['-o', 'BatchMode=yes', '-o', `ConnectTimeout=${options.connectTimeoutS ?? 15}`, '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4'];
  if (options.knownHostsFile) args.push('-o', 'StrictHostKeyChecking=accept-new', '-o', `UserKnownHostsFile=${options.knownHostsFile}`);
  if (target.sshPort && target.sshPort !== 22) args.push('-p', String(target.sshPort));
  if (target.sshKey) args.push('-i', target.sshKey, '-o', 'IdentitiesOnly=yes');
  args.push(target.sshUser ? `${target.sshUser}@${target.address}` : target.address);
  return args;
}
