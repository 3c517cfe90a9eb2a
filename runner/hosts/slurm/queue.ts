// A pipeline's Slurm jobs for `pipe hosts FILE` and `pipe down FILE`: the clusters its provision
// stages submit to (as the file says and as its runs had them), and the jobs queued or running
// there whose comment names this pipeline and cache (runner/hosts/slurm/request.ts).
import path from 'node:path';
import type { HostRow } from '../host-row.js';
import { shq, type SshTarget } from '../ssh.js';
import { captureText } from './shell.js';
import { parseComment } from './request.js';
import { provisioningSpecs, type ProvisionSpec, type StagesOf } from '../provisioners.js';

export interface ClusterTarget {
  readonly target: SshTarget;
  /** 'this machine' or user@login-node. */
  readonly where: string;
  readonly stages: readonly string[];
}

/** Distinct submit hosts of the `provider: slurm` ones of these host-provisioning stages. */
export async function slurmClusters(specs: readonly ProvisionSpec[], pipelineDir: string, cacheRoot: string): Promise<ClusterTarget[]> {
  const { sshKeyPath } = await import('../ssh-key.js');
  const out = new Map<string, { target: SshTarget; where: string; stages: string[] }>();
  for (const spec of specs) {
    if (spec.with['provider'] !== 'slurm') continue;
    const w = spec.with;
    const address = typeof w['address'] === 'string' ? w['address'] : undefined;
    const user = typeof w['ssh_user'] === 'string' ? w['ssh_user'] : 'ubuntu';
    const port = typeof w['ssh_port'] === 'number' ? w['ssh_port'] : 22;
    const key = address ? sshKeyPath(typeof w['ssh_key'] === 'string' ? w['ssh_key'] : undefined, pipelineDir) : undefined;
    const id = address ? `${user}@${address}:${port}` : 'local';
    const entry = out.get(id) ?? {
      target: {
        address: address ?? 'localhost',
        user,
        port,
        ...(key ? { key } : {}),
        knownHosts: path.join(cacheRoot, 'ssh', 'known_hosts'),
        ...(address ? {} : { local: true }),
      },
      where: address ? `${user}@${address}` : 'this machine',
      stages: [],
    };
    if (!entry.stages.includes(spec.id)) entry.stages.push(spec.id);
    out.set(id, entry);
  }
  return [...out.values()];
}

export interface QueuedJob {
  readonly id: string;
  readonly stage: string;
  readonly state: string;
  readonly reason: string;
  readonly elapsed: string;
  readonly node: string;
  readonly partition: string;
}

/** This pipeline's (and cache's) jobs in the queue of one cluster. Throws Error with squeue's message. */
export async function queuedJobs(c: ClusterTarget, pipeline: string, cacheId: string): Promise<QueuedJob[]> {
  const r = await captureText(c.target, `squeue --me -h -o '%i|%T|%r|%M|%N|%P|%k'`);
  if (!r.ok) throw new Error(`squeue on ${c.where} failed: ${r.err.split('\n').pop() || `exit ${r.exitCode}`}`);
  const jobs: QueuedJob[] = [];
  for (const line of r.out.split('\n')) {
    const [id, state, reason, elapsed, node, partition, comment] = line.trim().split('|');
    const tag = parseComment(comment ?? '');
    if (!id || !tag || tag.pipeline !== pipeline || tag.cache !== cacheId) continue;
    jobs.push({ id, stage: tag.stage, state: state ?? '', reason: reason ?? '', elapsed: elapsed ?? '', node: node ?? '', partition: partition ?? '' });
  }
  return jobs;
}

/** `pipe hosts` rows: one per job, its cluster in the region column, its node (or why it waits) as the address. */
export function jobRows(c: ClusterTarget, pipeline: string, jobs: readonly QueuedJob[]): HostRow[] {
  return jobs.map((j) => ({
    id: `slurm:${j.id}`,
    pipeline,
    stage: j.stage,
    state: j.state.toLowerCase(),
    type: `slurm job (${j.partition || 'default'})`,
    region: c.where,
    spot: false,
    ...(elapsedMs(j.elapsed) !== undefined ? { uptimeMs: elapsedMs(j.elapsed)! } : {}),
    address: j.node || (j.reason ? `(${j.reason})` : ''),
  }));
}

export async function cancelJobs(c: ClusterTarget, ids: readonly string[]): Promise<{ ok: boolean; err: string }> {
  const r = await captureText(c.target, `scancel ${ids.map(shq).join(' ')}`);
  return { ok: r.ok, err: r.err };
}

/** squeue's elapsed time ([D-][HH:]MM:SS) in milliseconds. */
export function elapsedMs(text: string): number | undefined {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(text.trim());
  if (!m) return undefined;
  return (((Number(m[1] ?? 0) * 24 + Number(m[2] ?? 0)) * 60 + Number(m[3])) * 60 + Number(m[4])) * 1000;
}

/** The clusters of a pipeline (its file and its recorded runs) and their jobs of this cache. */
export async function pipelineJobs(
  pipeline: StagesOf & { readonly name: string; readonly dir: string },
  cacheRoot: string,
  /** The provision stages earlier runs recorded (a provider given with --set is not in the file). */
  recorded: readonly ProvisionSpec[],
): Promise<{ clusters: ClusterTarget[]; jobs: { cluster: ClusterTarget; jobs: QueuedJob[] }[] }> {
  const { cacheIdOf } = await import('../cache-id.js');
  const clusters = await slurmClusters([...provisioningSpecs(pipeline), ...recorded], pipeline.dir, cacheRoot);
  const cacheId = cacheIdOf(cacheRoot);
  const jobs = [];
  for (const c of clusters) jobs.push({ cluster: c, jobs: await queuedJobs(c, pipeline.name, cacheId) });
  return { clusters, jobs };
}
