// `provision` with `provider: slurm`: the cluster is reached through its login node (`address`,
// `ssh_user`, as `provider: ssh`) or is this machine (no `address`: sbatch on the PATH). Checks
// that the controller answers and the partition exists, and records the cluster (not a node)
// and what each job asks for in host.json; runs_on stages then become batch jobs.
import path from 'node:path';
import type { StageContext, StageResult } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import type { HostInfo, ProvisionParams } from './provision-types.js';
import { sshWaitTiming } from './provision-ssh.js';
import { cacheRootOfWorkDir, hostClients, sshKeyPath } from '../runner/stage-api.js';

/** Options pipe sets itself on every job: a user's sbatch_args may not change them. */
const OWN_OPTIONS = [
  '--job-name',
  '-J',
  '--comment',
  '--output',
  '-o',
  '--error',
  '-e',
  '--open-mode',
  '--chdir',
  '-D',
  '--parsable',
  '--wrap',
  '--wait',
  '-W',
];

export async function provisionSlurm(ctx: StageContext<ProvisionParams>): Promise<{ host: HostInfo; result: StageResult }> {
  const p = ctx.params;
  for (const a of p.sbatch_args ?? []) {
    const name = a.split('=')[0]!;
    if (OWN_OPTIONS.includes(name))
      throw new StageError(
        `sbatch_args: ${name} is set by pipe for each job (it names the job after the stage's key and reads its log)`,
        'remove it from sbatch_args',
      );
  }
  const { probeCluster, describePartition } = await hostClients.slurm();
  const local = !p.address;
  const sshKey = local ? undefined : sshKeyPath(p.ssh_key, ctx.pipelineDir);
  if (!local) {
    const { waitForSsh } = await hostClients.ssh();
    const ssh = await waitForSsh({ host: p.address!, port: p.ssh_port, ...sshWaitTiming(p.ssh_wait_seconds), signal: ctx.signal });
    ctx.log.info(`SSH answers on the login node ${p.address}:${p.ssh_port} (${ssh.banner})`);
  }
  const where = local ? 'this machine' : `${p.ssh_user}@${p.address}`;
  const target = {
    address: p.address ?? 'localhost',
    user: p.ssh_user,
    port: p.ssh_port,
    ...(sshKey ? { key: sshKey } : {}),
    knownHosts: path.join(cacheRootOfWorkDir(ctx.workDir), 'ssh', 'known_hosts'),
    ...(local ? { local: true } : {}),
  };
  const facts = await probeCluster(target, where, ctx.signal);
  const partition = p.partition ? facts.partitions.find((x) => x.name === p.partition) : (facts.partitions.find((x) => x.isDefault) ?? facts.partitions[0]);
  if (p.partition && !partition) {
    throw new StageError(
      `partition ${p.partition} is not on Slurm cluster ${facts.cluster} (it has: ${facts.partitions.map((x) => x.name).join(', ') || 'none'})`,
      'set `partition` to one that `sinfo` lists',
    );
  }
  if (partition && !partition.up) ctx.log.warn(`partition ${partition.name} of ${facts.cluster} is down: jobs will wait until it is up`);
  ctx.log.info(`Slurm cluster ${facts.cluster} via ${where}; partition ${partition ? describePartition(partition) : '(none listed)'}`);
  const request = {
    ...(p.partition ? { partition: p.partition } : {}),
    ...(p.gres ? { gres: p.gres } : {}),
    ...(p.cpus ? { cpus: p.cpus } : {}),
    ...(p.mem ? { mem: p.mem } : {}),
    ...(p.time ? { time: p.time } : {}),
    ...(p.account ? { account: p.account } : {}),
    ...(p.qos ? { qos: p.qos } : {}),
    ...(p.sbatch_args?.length ? { sbatchArgs: p.sbatch_args } : {}),
  };
  // The GPUs a job gets are a compute node's, not the login node's: a probe job asks one (cached).
  // `gpu: cpu` installs for the CPU whatever the nodes have: nothing to ask then.
  const { computeGpu, describeComputeGpu } = await hostClients.slurmGpu();
  const gpuProbe =
    p.gpu === 'cpu'
      ? undefined
      : await computeGpu({
          target,
          where,
          cluster: facts.cluster,
          request,
          cacheDir: path.join(cacheRootOfWorkDir(ctx.workDir), 'slurm'),
          log: ctx.log,
          signal: ctx.signal,
        });
  const host: HostInfo = {
    provider: 'slurm',
    address: p.address ?? 'localhost',
    ...(local ? {} : { sshUser: p.ssh_user, sshPort: p.ssh_port, ...(sshKey ? { sshKey } : {}) }),
    // The submit host is this machine: the jobs run this pipe (its filesystem is the cluster's).
    ...(local && !p.pipe_path ? { pipePath: (await hostClients.install()).PACKAGE_ROOT } : {}),
    cpu: 'unknown',
    cores: p.cpus ?? 0,
    memoryGb: 0,
    gpus: gpuProbe?.gpus ?? [],
    backend: 'auto',
    slurm: { cluster: facts.cluster, local, ...request, ...(gpuProbe ? { gpuProbe } : {}) },
  };
  const asked = Object.entries(request)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(' ') : String(v)}`)
    .join(', ');
  return {
    host,
    result: {
      summary: `slurm cluster ${facts.cluster} via ${where}${asked ? ` (${asked})` : ''}${gpuProbe ? `; job GPUs: ${describeComputeGpu(gpuProbe)}` : ''}`,
      meta: { provider: 'slurm', cluster: facts.cluster, ...(partition ? { partition: partition.name } : {}), ...(gpuProbe ? { gpuProbe } : {}) },
    },
  };
}
