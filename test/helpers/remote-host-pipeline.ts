// The pipeline of the `runs_on` end-to-end tests: a `provision` stage for the loopback sshd, a
// local stage, two stages placed on the host (or, with remote: false, the same run locally) and
// a local one after them.
import type { Sshd } from '../servers/sshd.js';

interface PipelineOptions {
  readonly slow?: boolean;
  readonly remote?: boolean;
  /** An existing pipe on the host; default: none, pipe installs itself there (the user's default path). */
  readonly pipePath?: string;
  /** More `provision` params (YAML lines, indented under `with:`). */
  readonly hostParams?: readonly string[];
  /** The placed train stage's shell command, in place of the default one. */
  readonly work?: string;
}

export function pipeline(sshd: Sshd, workspace: string, opts: PipelineOptions = {}): string {
  const host = {
    provider: 'ssh',
    address: '127.0.0.1',
    sshUser: 'root',
    sshPort: sshd.port,
    sshKey: sshd.userKey,
    workspace,
  };
  const work =
    opts.work ??
    (opts.slow
      ? 'echo started; sleep 20; echo never > out.txt'
      : 'echo remote-log-line; tr a-z A-Z < "$PIPE_IN_SRC/data.txt" > out.txt; cat "$PIPE_PIPELINE_DIR/notes.txt" >> out.txt');
  return `name: remote
stages:
  gpu:
    uses: provision
    with:
      provider: ssh
      address: 127.0.0.1
      ssh_user: root
      ssh_port: ${host.sshPort}
      ssh_key: ${host.sshKey}
      remote_dir: ${host.workspace}
      ssh_wait_seconds: 5${opts.pipePath ? `\n      pipe_path: ${opts.pipePath}` : ''}${(opts.hostParams ?? []).map((l) => `\n      ${l}`).join('')}
  data:
    uses: command
    with: { workdir: out, run: 'echo hello world > data.txt' }
  train:
    uses: command
    inputs: { src: data${opts.remote === false ? '' : ', host: gpu'} }
    ${opts.remote === false ? '' : 'runs_on: gpu'}
    with: { workdir: out, run: ${JSON.stringify(work)} }
  after:
    uses: command
    inputs: { t: train }
    with: { workdir: out, run: 'cat "$PIPE_IN_T/out.txt" > copy.txt' }
  shout:
    uses: command
    inputs: { t: train${opts.remote === false ? '' : ', host: gpu'} }
    ${opts.remote === false ? '' : 'runs_on: gpu'}
    with: { workdir: out, run: 'tr a-z A-Z < "$PIPE_IN_T/out.txt" > loud.txt' }
`;
}
