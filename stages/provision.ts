// `uses: provision`: where the heavy stages run. `provider: local` describes this machine;
// `provider: ec2` finds or makes a GPU instance on AWS (reuse a running one, start a stopped
// one, launch only when none carries this pipeline/stage/cache's tags), waits until SSH
// answers, and writes host.json. `cache: never`: every run re-checks the real instance. The
// host artifact is placement, not data: the runner leaves host inputs out of downstream keys.
// The AWS SDK is imported only when provider is ec2, so the registry stays light.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Stage, StageContext, StageResult } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { cacheIdOf, cacheRootOfWorkDir, hostClients, sshKeyPath, type SlurmCluster } from '../runner/stage-api.js';
export { sshKeyPath };

export interface ProvisionParams {
  provider: 'local' | 'ec2' | 'ssh' | 'slurm';
  address?: string;
  remote_dir?: string;
  pipe_path?: string;
  gpu: 'auto' | 'required' | 'cpu';
  node_version?: string;
  node_dist_url?: string;
  instance_type: string;
  region?: string;
  ami?: string;
  ami_type: string;
  key_name?: string;
  ssh_user: string;
  ssh_port: number;
  ssh_key?: string;
  security_group: string;
  ssh_cidr?: string;
  subnet?: string;
  spot: boolean;
  volume_gb: number;
  max_hours: number;
  tags: Record<string, string>;
  endpoint?: string;
  ssh_wait_seconds: number;
  partition?: string;
  gres?: string;
  cpus?: number;
  mem?: string;
  time?: string | number;
  account?: string;
  qos?: string;
  sbatch_args?: string[];
}

/** host.json: what the runner needs to place a stage, and what a reader needs to judge timings. Never credentials. */
export interface HostInfo {
  readonly provider: 'local' | 'ec2' | 'ssh' | 'slurm';
  /** `provider: slurm`: the cluster and what each job asks of it (runner/hosts/slurm/request.ts). */
  readonly slurm?: SlurmCluster;
  /** Where pipe keeps its files on the host (relative to the remote home). */
  readonly workspace?: string;
  /** An existing pipe installation on the host (else pipe is synced and installed there once). */
  readonly pipePath?: string;
  /** `gpu: required`: a stage that would compute on the host's CPU fails instead of warning. */
  readonly gpu?: 'auto' | 'required' | 'cpu';
  /** The Node pipe installs on a host without one. */
  readonly nodeVersion?: string;
  readonly nodeDistUrl?: string;
  /** Public DNS name or IP of the instance; 'localhost' for local. */
  readonly address: string;
  readonly instanceId?: string;
  readonly region?: string;
  readonly instanceType?: string;
  readonly availabilityZone?: string;
  readonly spot?: boolean;
  readonly sshUser?: string;
  readonly sshPort?: number;
  /** Path of the private key file (never its content). */
  readonly sshKey?: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly gpus: readonly string[];
  /** The tfjs backend expected there: 'tensorflow-gpu', 'tensorflow' or 'wasm'. */
  readonly backend: string;
  /** The max_hours guard of an EC2 instance (0: none) and roughly when it fires. */
  readonly maxHours?: number;
  readonly shutdownBy?: string;
}

export const HOST_FILE = 'host.json';

export async function readHostInfo(artifactDir: string): Promise<HostInfo> {
  return JSON.parse(await readFile(path.join(artifactDir, HOST_FILE), 'utf8')) as HostInfo;
}

interface TypeFacts {
  readonly vcpus: number;
  readonly memoryGb: number;
  readonly gpus: readonly string[];
  readonly cpu: string;
  /** Approximate on-demand Linux price in us-east-1, USD/hour. */
  readonly usdPerHour: number;
}

const T4 = 'NVIDIA T4';
const A10G = 'NVIDIA A10G';
const L4 = 'NVIDIA L4';
const L40S = 'NVIDIA L40S';
const XEON_CL = 'Intel Xeon (Cascade Lake)';
const EPYC2 = 'AMD EPYC (2nd gen)';
const EPYC3 = 'AMD EPYC (3rd gen)';
const n = (k: number, gpu: string): string[] => Array.from({ length: k }, () => gpu);

/** A small built-in table: enough to print a price class and fill host.json without an extra API call. */
export const INSTANCE_TYPES: Readonly<Record<string, TypeFacts>> = {
  'g4dn.xlarge': { vcpus: 4, memoryGb: 16, gpus: n(1, T4), cpu: XEON_CL, usdPerHour: 0.526 },
  'g4dn.2xlarge': { vcpus: 8, memoryGb: 32, gpus: n(1, T4), cpu: XEON_CL, usdPerHour: 0.752 },
  'g4dn.4xlarge': { vcpus: 16, memoryGb: 64, gpus: n(1, T4), cpu: XEON_CL, usdPerHour: 1.204 },
  'g4dn.12xlarge': { vcpus: 48, memoryGb: 192, gpus: n(4, T4), cpu: XEON_CL, usdPerHour: 3.912 },
  'g5.xlarge': { vcpus: 4, memoryGb: 16, gpus: n(1, A10G), cpu: EPYC2, usdPerHour: 1.006 },
  'g5.2xlarge': { vcpus: 8, memoryGb: 32, gpus: n(1, A10G), cpu: EPYC2, usdPerHour: 1.212 },
  'g5.4xlarge': { vcpus: 16, memoryGb: 64, gpus: n(1, A10G), cpu: EPYC2, usdPerHour: 1.624 },
  'g5.12xlarge': { vcpus: 48, memoryGb: 192, gpus: n(4, A10G), cpu: EPYC2, usdPerHour: 5.672 },
  'g6.xlarge': { vcpus: 4, memoryGb: 16, gpus: n(1, L4), cpu: EPYC3, usdPerHour: 0.805 },
  'g6.2xlarge': { vcpus: 8, memoryGb: 32, gpus: n(1, L4), cpu: EPYC3, usdPerHour: 0.978 },
  'g6.4xlarge': { vcpus: 16, memoryGb: 64, gpus: n(1, L4), cpu: EPYC3, usdPerHour: 1.323 },
  'g6e.xlarge': { vcpus: 4, memoryGb: 32, gpus: n(1, L40S), cpu: EPYC3, usdPerHour: 1.861 },
  'g6e.2xlarge': { vcpus: 8, memoryGb: 64, gpus: n(1, L40S), cpu: EPYC3, usdPerHour: 2.242 },
  'p3.2xlarge': { vcpus: 8, memoryGb: 61, gpus: n(1, 'NVIDIA V100'), cpu: 'Intel Xeon (Broadwell)', usdPerHour: 3.06 },
  'p4d.24xlarge': { vcpus: 96, memoryGb: 1152, gpus: n(8, 'NVIDIA A100 40GB'), cpu: XEON_CL, usdPerHour: 21.96 },
  'p5.48xlarge': { vcpus: 192, memoryGb: 2048, gpus: n(8, 'NVIDIA H100'), cpu: EPYC3, usdPerHour: 55.04 },
  't3.large': { vcpus: 2, memoryGb: 8, gpus: [], cpu: 'Intel Xeon', usdPerHour: 0.0832 },
  'c6i.xlarge': { vcpus: 4, memoryGb: 8, gpus: [], cpu: 'Intel Xeon (Ice Lake)', usdPerHour: 0.17 },
  'm6i.xlarge': { vcpus: 4, memoryGb: 16, gpus: [], cpu: 'Intel Xeon (Ice Lake)', usdPerHour: 0.192 },
};

function usd(x: number): string {
  return x < 10 ? `$${x.toFixed(2)}` : `$${Math.round(x)}`;
}

/** "g4dn.xlarge (4 vCPU, 16 GiB, 1x NVIDIA T4): ~$0.53/h, low price class (approximate on-demand us-east-1)". */
export function priceLine(type: string, spot: boolean): string {
  const f = INSTANCE_TYPES[type];
  if (!f) return `${type}: price not in pipe's table; see https://aws.amazon.com/ec2/pricing/on-demand/`;
  const klass = f.usdPerHour < 1 ? 'low' : f.usdPerHour < 5 ? 'medium' : 'high';
  const gpu = f.gpus.length ? `, ${f.gpus.length}x ${f.gpus[0]}` : ', no GPU';
  const spotNote = spot ? '; spot usually costs much less and varies' : '';
  return `${type} (${f.vcpus} vCPU, ${f.memoryGb} GiB${gpu}): ~${usd(f.usdPerHour)}/h, ${klass} price class (approximate on-demand us-east-1${spotNote})`;
}

export function guardLine(type: string, maxHours: number): string {
  if (!(maxHours > 0)) return 'no max_hours guard (max_hours: 0): the instance runs until `pipe down`';
  const f = INSTANCE_TYPES[type];
  const cost = f ? ` (at most ~${usd(f.usdPerHour * maxHours)} per boot)` : '';
  return `max_hours guard: the instance shuts itself down and terminates ${maxHours}h after boot${cost}; \`pipe down\` stops it sooner`;
}

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
        ? await provisionEc2(ctx)
        : p.provider === 'ssh'
          ? await provisionSsh(ctx)
          : p.provider === 'slurm'
            ? await (await import('./provision-slurm.js')).provisionSlurm(ctx)
            : await provisionLocal(ctx);
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

async function provisionLocal(ctx: StageContext<ProvisionParams>): Promise<{ host: HostInfo; result: StageResult }> {
  const { probeLocalHost } = await import('./local-host.js');
  const f = await probeLocalHost();
  const gpus = f.gpus.length ? `${f.gpus.length} GPU${f.gpus.length > 1 ? 's' : ''} (${[...new Set(f.gpus)].join(', ')})` : 'no GPU';
  ctx.log.info(`local host: ${f.cpu}, ${f.cores} cores, ${f.memoryGb} GiB, ${gpus}; tfjs backend: ${f.backend}`);
  for (const note of f.backendNotes) ctx.log.debug(`backend: ${note}`);
  const host: HostInfo = { provider: 'local', address: 'localhost', cpu: f.cpu, cores: f.cores, memoryGb: f.memoryGb, gpus: f.gpus, backend: f.backend };
  return {
    host,
    result: {
      summary: `local: ${f.cores} cores, ${f.memoryGb} GiB, ${gpus}, ${f.backend}`,
      meta: { provider: 'local', backend: f.backend, gpus: f.gpus.length },
    },
  };
}

/** `provider: ssh`: a machine the user already has; pipe only checks that SSH answers. */
async function provisionSsh(ctx: StageContext<ProvisionParams>): Promise<{ host: HostInfo; result: StageResult }> {
  const p = ctx.params;
  if (!p.address) throw new StageError('provider ssh needs `address`: the host name or IP of the machine');
  const { waitForSsh } = await hostClients.ssh();
  const waitMs = p.ssh_wait_seconds * 1000;
  const ssh = await waitForSsh({
    host: p.address,
    port: p.ssh_port,
    timeoutMs: waitMs,
    intervalMs: Math.min(3000, Math.max(100, Math.floor(waitMs / 10))),
    signal: ctx.signal,
  });
  ctx.log.info(`SSH answers on ${p.address}:${p.ssh_port} (${ssh.banner})`);
  const sshKey = sshKeyPath(p.ssh_key, ctx.pipelineDir);
  const host: HostInfo = {
    provider: 'ssh',
    address: p.address,
    sshUser: p.ssh_user,
    sshPort: p.ssh_port,
    ...(sshKey ? { sshKey } : {}),
    cpu: 'unknown',
    cores: 0,
    memoryGb: 0,
    gpus: [],
    backend: 'auto',
  };
  return { host, result: { summary: `ssh ${p.ssh_user}@${p.address}:${p.ssh_port}`, meta: { provider: 'ssh' } } };
}

async function provisionEc2(ctx: StageContext<ProvisionParams>): Promise<{ host: HostInfo; result: StageResult }> {
  const p = ctx.params;
  const { ec2, describeAwsError, resolveAmi, DEFAULT_AMI_TYPE, maxHoursUserData, waitForSsh, ensureSecurityGroup } = await hostClients.ec2();

  const region = await ec2.resolveRegion(p.region);
  const endpoint = ec2.ec2Endpoint(p.endpoint);
  const conn = { region, ...(p.endpoint ? { endpoint: p.endpoint } : {}) };
  const client = ec2.createEc2Client(conn);
  // Name the failing operation in error messages ("AWS denied RunInstances").
  let lastCommand = 'EC2';
  client.middlewareStack.add(
    (next, context) => (args) => {
      lastCommand = String((context as { commandName?: string }).commandName ?? lastCommand).replace(/Command$/, '');
      return next(args);
    },
    { step: 'initialize', name: 'pipeLastCommand' },
  );
  const errCtx = () => ({
    action: lastCommand,
    region,
    instanceType: p.instance_type,
    spot: p.spot,
    ...(p.ami ? { ami: p.ami } : {}),
    ...(endpoint ? { endpoint } : {}),
  });

  const cacheId = cacheIdOf(cacheRootOfWorkDir(ctx.workDir));
  const sshKey = sshKeyPath(p.ssh_key, ctx.pipelineDir);
  let ensured: Awaited<ReturnType<typeof ec2.ensureInstance>>;
  try {
    await ec2.assertCredentials(client, region);
    ctx.log.info(priceLine(p.instance_type, p.spot));
    ctx.log.info(guardLine(p.instance_type, p.max_hours));
    const tags: Record<string, string> = {
      Name: `pipe-${ctx.pipelineName}-${ctx.stageId}`,
      ...p.tags,
      [ec2.TAG_PIPELINE]: ctx.pipelineName,
      [ec2.TAG_STAGE]: ctx.stageId,
      [ec2.TAG_CACHE]: cacheId,
      [ec2.TAG_MAX_HOURS]: String(p.max_hours),
    };
    ensured = await ec2.ensureInstance(client, {
      pipeline: ctx.pipelineName,
      stage: ctx.stageId,
      cache: cacheId,
      region,
      timing: ec2.waitTiming(),
      log: ctx.log,
      signal: ctx.signal,
      prepareLaunch: async () => {
        if (!p.key_name) ctx.log.warn('no `key_name`: the instance gets no SSH key pair, so pipe cannot log in unless the AMI already trusts your key');
        if (!sshKey) ctx.log.warn('no private key found (~/.ssh/id_ed25519 or id_rsa): set `ssh_key`');
        const ami = await resolveAmi(conn, { ...(p.ami ? { ami: p.ami } : {}), amiType: p.ami_type || DEFAULT_AMI_TYPE }, ctx.signal);
        const image = await ec2.imageInfo(client, ami.imageId, ctx.signal);
        ctx.log.info(`AMI ${ami.imageId}${image.name ? ` (${image.name})` : ''}${ami.parameter ? ` from ${ami.parameter}` : ''}`);
        const groupId = await ensureSecurityGroup(
          client,
          { name: p.security_group, port: p.ssh_port, ...(p.ssh_cidr ? { cidr: p.ssh_cidr } : {}), ...(p.subnet ? { subnetId: p.subnet } : {}) },
          ctx.log,
          ctx.signal,
        );
        const userData = maxHoursUserData(p.max_hours);
        return {
          imageId: ami.imageId,
          instanceType: p.instance_type,
          ...(p.key_name ? { keyName: p.key_name } : {}),
          securityGroupIds: [groupId],
          ...(p.subnet ? { subnetId: p.subnet } : {}),
          spot: p.spot,
          volumeGb: p.volume_gb,
          ...(image.rootDeviceName ? { rootDeviceName: image.rootDeviceName } : {}),
          ...(userData ? { userData } : {}),
          tags,
        };
      },
    });
  } catch (e) {
    if (ctx.signal.aborted) throw new StageError('interrupted');
    throw describeAwsError(e, errCtx());
  } finally {
    client.destroy();
  }

  const inst = ensured.instance;
  if (inst.type !== p.instance_type)
    ctx.log.warn(`instance ${inst.id} is ${inst.type}, not ${p.instance_type}: \`pipe down --terminate\` and re-run to replace it`);
  if (inst.spot !== p.spot)
    ctx.log.warn(
      `instance ${inst.id} is ${inst.spot ? '' : 'not '}a spot instance, unlike \`spot: ${p.spot}\`: \`pipe down --terminate\` and re-run to replace it`,
    );
  const guard = Number(inst.tags[ec2.TAG_MAX_HOURS] ?? p.max_hours);
  let shutdownBy: string | undefined;
  if (guard > 0 && inst.launchTime) {
    const at = inst.launchTime.getTime() + guard * 3_600_000;
    shutdownBy = new Date(at).toISOString();
    const leftMin = Math.round((at - Date.now()) / 60_000);
    if (ensured.action !== 'launched') ctx.log.info(`max_hours guard of ${inst.id}: ${guard}h, about ${leftMin} min left`);
    if (leftMin < 30)
      ctx.log.warn(`${inst.id} shuts itself down in about ${Math.max(0, leftMin)} min (max_hours ${guard}): \`pipe down\` and re-run for a fresh guard`);
  }
  if (guard !== p.max_hours && ensured.action !== 'launched')
    ctx.log.warn(`${inst.id} was launched with max_hours ${guard}; the new value applies to the next launch`);

  let address = ec2.publicAddress(inst);
  if (!address && inst.privateIp) {
    address = inst.privateIp;
    ctx.log.warn(`${inst.id} has no public address; using its private IP ${address} (reachable only from inside the VPC or over a VPN)`);
  }
  if (!address) throw new StageError(`instance ${inst.id} has no IP address`, 'launch it in a subnet that assigns public IPs (`subnet`)');

  const waitMs = p.ssh_wait_seconds * 1000;
  const ssh = await waitForSsh({
    host: address,
    port: p.ssh_port,
    timeoutMs: waitMs,
    intervalMs: Math.min(3000, Math.max(100, Math.floor(waitMs / 10))),
    instanceId: inst.id,
    region,
    signal: ctx.signal,
    onAttempt: (n, why) => {
      if (n === 1 || n % 10 === 0) ctx.log.info(`waiting for SSH on ${address}:${p.ssh_port} (${why})`);
    },
  });
  ctx.log.info(`SSH answers on ${address}:${p.ssh_port} (${ssh.banner})`);

  const facts = INSTANCE_TYPES[inst.type];
  const gpus = facts?.gpus ?? [];
  const host: HostInfo = {
    provider: 'ec2',
    address,
    instanceId: inst.id,
    region,
    instanceType: inst.type,
    ...(inst.availabilityZone ? { availabilityZone: inst.availabilityZone } : {}),
    spot: inst.spot,
    sshUser: p.ssh_user,
    sshPort: p.ssh_port,
    ...(sshKey ? { sshKey } : {}),
    cpu: facts?.cpu ?? `EC2 ${inst.type}`,
    cores: facts?.vcpus ?? inst.cores ?? 0,
    memoryGb: facts?.memoryGb ?? 0,
    gpus,
    // The host installs @tensorflow/tfjs-node-gpu (tfjs-node without a GPU).
    backend: gpus.length ? 'tensorflow-gpu' : 'tensorflow',
    maxHours: guard,
    ...(shutdownBy ? { shutdownBy } : {}),
  };
  return {
    host,
    result: {
      summary: `ec2 ${inst.id} ${inst.type} ${ensured.action} at ${address}`,
      meta: { provider: 'ec2', instanceId: inst.id, instanceType: inst.type, region, action: ensured.action, backend: host.backend },
    },
  };
}
