// The pipeline of the Slurm end-to-end tests: a `provision` stage for the test cluster (this
// machine submits, or a login node over the loopback sshd), a local stage, a stage placed on
// the cluster (a batch job) and a local one after it; with slurm: false the same run locally.
// bench/slurm.ts times the same pipeline placed on the cluster, over ssh and here (`host`).
import type { Sshd } from '../servers/sshd.js';

export interface SlurmPipelineOptions {
  /** false: the same stages without placement (a local run). */
  readonly slurm?: boolean;
  /** The placed stage's shell command (in its output dir; $PIPE_IN_SRC/data.txt is its input). */
  readonly work?: string;
  /** More `provision` params (YAML lines, indented under `with:`). */
  readonly hostParams?: readonly string[];
  /** Reach the cluster through this sshd's login (root@127.0.0.1) instead of submitting here. */
  readonly login?: Sshd;
  /** A `params:` block the stages may use. */
  readonly params?: string;
  readonly name?: string;
  /** The provision stage's params in place of the Slurm cluster's (another placement: ssh, local). */
  readonly host?: readonly string[];
  /** false: no local stage after the placed one. */
  readonly after?: boolean;
}

export const DEFAULT_WORK = 'echo job-log-line; tr a-z A-Z < "$PIPE_IN_SRC/data.txt" > out.txt; cat "$PIPE_PIPELINE_DIR/notes.txt" >> out.txt';

export function slurmPipeline(workspace: string, opts: SlurmPipelineOptions = {}): string {
  const placed = opts.slurm !== false;
  const login = opts.login
    ? ['address: 127.0.0.1', 'ssh_user: root', `ssh_port: ${opts.login.port}`, `ssh_key: ${opts.login.userKey}`, 'ssh_wait_seconds: 5']
    : [];
  const hostLines = opts.host ?? ['provider: slurm', `remote_dir: ${workspace}`, 'cpus: 1', ...login, ...(opts.hostParams ?? [])];
  const after = `  after:
    uses: command
    inputs: { t: train }
    with: { workdir: out, run: 'cat "$PIPE_IN_T/out.txt" > copy.txt' }
`;
  return `name: ${opts.name ?? 'cluster'}
${opts.params ?? ''}
stages:
  cluster:
    uses: provision
    with:
${hostLines.map((l) => `      ${l}`).join('\n')}
  data:
    uses: command
    with: { workdir: out, run: 'echo hello world > data.txt' }
  train:
    uses: command
    inputs: { src: data${placed ? ', host: cluster' : ''} }
    ${placed ? 'runs_on: cluster' : ''}
    with: { workdir: out, run: ${JSON.stringify(opts.work ?? DEFAULT_WORK)} }
${opts.after === false ? '' : after}`;
}
