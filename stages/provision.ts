// `uses: provision`: where the heavy stages run. `provider: local` describes this machine;
// `provider: ec2` finds or makes a GPU instance on AWS (reuse a running one, start a stopped
// one, launch only when none carries this pipeline/stage/cache's tags), waits until SSH
// answers, and writes host.json. `cache: never`: every run re-checks the real instance. The
// host artifact is placement, not data: the runner leaves host inputs out of downstream keys.
// The AWS SDK is imported only when provider is ec2, so the registry stays light.
// Each provider lives in its own module (provision-local/-ssh/-ec2/-slurm.ts), loaded when used.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Stage } from '../runner/types.js';
import { HOST_FILE, sshKeyPath } from '../runner/stage-api.js';
import type { ProvisionParams } from './provision-types.js';
export type { HostInfo, ProvisionParams } from './provision-types.js';
export { sshKeyPath };
/** host.json's name and its reader are the runner's: one type for the writer and the readers. */
export { HOST_FILE, readHostFile as readHostInfo } from '../runner/stage-api.js';

const str = (description: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'string', minLength: 1, description, ...extra });

export const provisionStage: Stage<ProvisionParams> = {
  name: 'provision',
  version: 1,
  provisionsHosts: true,
  description:
    'Where stages with `runs_on` run: this machine (`provider: local`), an AWS EC2 GPU instance (`provider: ec2`), a machine over ssh, or a Slurm cluster (each stage a batch job). ' +
    'An EC2 instance is found by tags and reused, started or launched, with a `max_hours` shutdown guard. Writes host.json. Runs every time.',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      provider: {
        description:
          '`local` (this machine), `ec2` (a GPU instance pipe manages), `ssh` (a machine you already have, at `address`) or `slurm` (a cluster: each runs_on stage is a batch job).',
        enum: ['local', 'ec2', 'ssh', 'slurm'],
        default: 'local',
      },
      address: str('Host name or IP of the machine, for `provider: ssh`; for `provider: slurm`, the login node (absent: this machine submits).'),
      remote_dir: str('Where pipe keeps its files on the host, relative to the remote home (default .pipe-remote).'),
      pipe_path: str(
        'An existing pipe installation on the host; default: pipe is synced there and installed once (npm ci; the CUDA 12 build of ONNX Runtime where nvidia-smi lists a GPU).',
      ),
      gpu: {
        description:
          '`auto`: use the GPU where the host has one, and warn (with the reason) when a stage would compute on its CPU; `required`: fail such a stage instead; `cpu`: install for the CPU only.',
        enum: ['auto', 'required', 'cpu'],
        default: 'auto',
      },
      node_version: str('The Node.js version pipe installs under `remote_dir` on a host without Node >= 20 (default: a pinned LTS).', {
        pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+$',
      }),
      node_dist_url: str('Where Node release tarballs and SHASUMS256.txt are downloaded from (a mirror of https://nodejs.org/dist).', {
        pattern: '^https?://[^\\s\'"`$\\\\]+$',
      }),
      instance_type: str('EC2 instance type.', { default: 'g4dn.xlarge' }),
      region: str('AWS region (default: from AWS_REGION / ~/.aws/config).', { pattern: '^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$' }),
      ami: str('Explicit AMI id (default: the latest Deep Learning AMI of `ami_type`).', { pattern: '^ami-[0-9a-f]{8,17}$' }),
      ami_type: str('Deep Learning AMI type, read from SSM /aws/service/deeplearning/ami/x86_64/<ami_type>/latest/ami-id.', {
        default: 'base-oss-nvidia-driver-gpu-ubuntu-22.04',
        pattern: '^[a-z0-9][a-z0-9.-]*$',
      }),
      key_name: str('EC2 key pair to install for SSH login (its public half must match `ssh_key`).'),
      ssh_user: str('SSH login user.', { default: 'ubuntu' }),
      ssh_port: { description: 'SSH port.', type: 'integer', minimum: 1, maximum: 65535, default: 22 },
      ssh_key: str('Private key file (default ~/.ssh/id_ed25519, else ~/.ssh/id_rsa). Only its path is recorded.'),
      security_group: str('Security group name; created if absent with ingress on the SSH port only.', { default: 'pipe-ssh' }),
      ssh_cidr: str('Allow SSH only from this address range (e.g. 203.0.113.7/32); without it a group created by pipe allows SSH from anywhere.', {
        pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$',
      }),
      subnet: str('Subnet id to launch in (default: the default VPC); picks the availability zone.', { pattern: '^subnet-[0-9a-f]+$' }),
      spot: { description: 'Launch a one-time spot instance (cheaper; may be reclaimed; cannot be stopped).', type: 'boolean', default: false },
      volume_gb: { description: 'Root volume size (GiB, gp3).', type: 'integer', minimum: 8, maximum: 16384, default: 100 },
      max_hours: {
        description: 'Cost guard: the instance shuts down and terminates this many hours after boot; 0 disables it.',
        type: 'number',
        minimum: 0,
        maximum: 720,
        default: 4,
      },
      tags: {
        description: 'Extra tags on the instance and its volume.',
        type: 'object',
        propertyNames: { type: 'string', pattern: '^(?!aws:|pipe:).{1,128}$' },
        additionalProperties: { type: 'string', maxLength: 256 },
        default: {},
      },
      endpoint: str('EC2/SSM endpoint URL (tests, mirrors); default AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_SSM or AWS.'),
      ssh_wait_seconds: { description: 'How long to wait for SSH to answer once the instance runs.', type: 'integer', minimum: 1, default: 300 },
      partition: str("Slurm: the partition jobs go to (default: the cluster's default).", { pattern: '^[A-Za-z0-9_.,-]+$' }),
      gres: str('Slurm: generic resources per job, e.g. `gpu:1` or `gpu:a100:2`.', { pattern: '^[A-Za-z0-9_:,.-]+$' }),
      cpus: { description: 'Slurm: CPUs per job (--cpus-per-task).', type: 'integer', minimum: 1 },
      mem: str('Slurm: memory per job, e.g. `16G`.', { pattern: '^[0-9]+[KMGT]?$' }),
      time: {
        description: 'Slurm: time limit per job (minutes, or "[D-]HH:MM:SS"); a job past it is killed and the stage fails.',
        anyOf: [
          { type: 'integer', minimum: 1 },
          { type: 'string', pattern: '^([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}$' },
        ],
      },
      account: str('Slurm: the account jobs are charged to.', { pattern: '^[A-Za-z0-9_.-]+$' }),
      qos: str('Slurm: quality of service.', { pattern: '^[A-Za-z0-9_.-]+$' }),
      sbatch_args: {
        description: 'Slurm: more sbatch options, one per item (e.g. `--constraint=a100`).',
        type: 'array',
        items: { type: 'string', pattern: '^-' },
      },
    },
  },
  inputs: {},
  output: 'host',
  cache: 'never',
  keyExclude: ['endpoint'],
  async run(ctx) {
    const p = ctx.params;
    const info =
      p.provider === 'ec2'
        ? await (await import('./provision-ec2.js')).provisionEc2(ctx)
        : p.provider === 'ssh'
          ? await (await import('./provision-ssh.js')).provisionSsh(ctx)
          : p.provider === 'slurm'
            ? await (await import('./provision-slurm.js')).provisionSlurm(ctx)
            : await (await import('./provision-local.js')).provisionLocal(ctx);
    if (p.provider !== 'local') {
      Object.assign(info.host, {
        ...(p.remote_dir ? { workspace: p.remote_dir } : {}),
        ...(p.pipe_path ? { pipePath: p.pipe_path } : {}),
        ...(p.gpu !== 'auto' ? { gpu: p.gpu } : {}),
        ...(p.node_version ? { nodeVersion: p.node_version } : {}),
        ...(p.node_dist_url ? { nodeDistUrl: p.node_dist_url } : {}),
      });
    }
    await writeFile(path.join(ctx.outDir, HOST_FILE), `${JSON.stringify(info.host, null, 2)}\n`);
    return info.result;
  },
};
