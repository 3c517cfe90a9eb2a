// One command on the cluster's submit host (here, or the login node over ssh), its whole output
// captured: stdout as bytes, so a log read from an offset stays byte-exact.
import { execa } from 'execa';
import { shellArgs, type SshTarget } from '../ssh.js';

export interface Captured {
  readonly exitCode: number | undefined;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export async function capture(t: SshTarget, command: string, signal?: AbortSignal): Promise<Captured> {
  const [file, args] = shellArgs(t, command);
  // The final newline kept: a log tail's last line is complete only with it, and without it the
  // newest line of a running job would wait for the next one (or for the job's end) to be shown.
  const r = await execa(file, args, {
    reject: false,
    stdin: 'ignore',
    encoding: 'buffer',
    stripFinalNewline: false,
    ...(signal ? { cancelSignal: signal } : {}),
  });
  return { exitCode: r.exitCode, stdout: Buffer.from(r.stdout ?? new Uint8Array()), stderr: Buffer.from(r.stderr ?? new Uint8Array()).toString('utf8') };
}

/** stdout as text, or a StageError-ready message from stderr. */
export async function captureText(
  t: SshTarget,
  command: string,
  signal?: AbortSignal,
): Promise<{ ok: boolean; out: string; err: string; exitCode: number | undefined }> {
  const r = await capture(t, command, signal);
  return { ok: r.exitCode === 0, out: r.stdout.toString('utf8'), err: r.stderr.trim(), exitCode: r.exitCode };
}
