// What `provision` learns of a Slurm cluster from its submit host: that sbatch is there, the
// cluster's name (the controller answers) and its partitions (sinfo), so a wrong partition fails
// at provision time instead of at the first submission.
import { StageError } from '../../types.js';
import type { SshTarget } from '../ssh.js';
import { captureText } from './shell.js';

export interface Partition {
  readonly name: string;
  readonly isDefault: boolean;
  readonly up: boolean;
  readonly nodes: number;
  readonly cpus: string;
  readonly memoryMb: string;
  readonly gres: string;
}

export interface ClusterFacts {
  readonly cluster: string;
  readonly partitions: readonly Partition[];
}

const NO_SBATCH = 97;
const MARK = '__pipe_sinfo__';

export async function probeCluster(t: SshTarget, where: string, signal?: AbortSignal): Promise<ClusterFacts> {
  const r = await captureText(
    t,
    `command -v sbatch >/dev/null 2>&1 || exit ${NO_SBATCH}; scontrol show config 2>&1 | grep -E '^ClusterName|error'; echo ${MARK}; sinfo -h -o '%P|%a|%D|%c|%m|%G' 2>&1`,
    signal,
  );
  if (r.exitCode === 255 && !t.local) throw new StageError(`cannot reach the Slurm login node ${where} over ssh: ${r.err.split('\n').pop() || 'exit 255'}`);
  if (r.exitCode === NO_SBATCH) {
    throw new StageError(
      `sbatch is not on the PATH of ${t.local ? 'this machine' : `a non-interactive ssh session on ${where}`}`,
      t.local
        ? "set `address` to the cluster's login node, or install the Slurm client (slurm-client)"
        : "load Slurm in that user's ~/.bashrc (e.g. module load slurm), or pick the login node",
    );
  }
  const [config = '', sinfo = ''] = r.out.split(`${MARK}\n`);
  const cluster = /^ClusterName\s*=\s*(\S+)/m.exec(config)?.[1];
  if (!cluster) {
    const why =
      (config + sinfo)
        .trim()
        .split('\n')
        .find((l) => /error/i.test(l)) ??
      (config.trim() || 'no answer');
    throw new StageError(
      `the Slurm controller does not answer from ${where}: ${why}`,
      'check `sinfo` there (is slurmctld up, munge running, SLURM_CONF right?)',
    );
  }
  const partitions: Partition[] = [];
  for (const line of sinfo.split('\n')) {
    const [name, avail, nodes, cpus, mem, gres] = line.trim().split('|');
    if (!name || avail === undefined) continue;
    partitions.push({
      name: name.replace(/\*$/, ''),
      isDefault: name.endsWith('*'),
      up: avail === 'up',
      nodes: Number(nodes) || 0,
      cpus: cpus ?? '?',
      memoryMb: mem ?? '?',
      gres: gres && gres !== '(null)' ? gres : '',
    });
  }
  return { cluster, partitions };
}

export function describePartition(p: Partition): string {
  return `${p.name}${p.isDefault ? ' (default)' : ''}: ${p.up ? 'up' : 'DOWN'}, ${p.nodes} node${p.nodes === 1 ? '' : 's'} of ${p.cpus} CPUs, ${p.memoryMb} MB${p.gres ? `, ${p.gres}` : ''}`;
}
