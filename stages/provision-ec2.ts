// `provision` with `provider: ec2`: finds or makes a GPU instance on AWS (reuse a running one,
// start a stopped one, launch only when none carries this pipeline/stage/cache's tags), waits
// until SSH answers, and describes it for host.json. The AWS SDK comes in through
// hostClients.ec2() when this runs, never when the module loads.
import type { StageContext, StageResult } from '../runner/types.js';
import { StageError } from '../runner/types.js';
import { cacheIdOf, cacheRootOfWorkDir, hostClients, sshKeyPath } from '../runner/stage-api.js';
import type { HostInfo, ProvisionParams } from './provision-types.js';
import { sshWaitTiming } from './provision-ssh.js';

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

export async function provisionEc2(ctx: StageContext<ProvisionParams>): Promise<{ host: HostInfo; result: StageResult }> {
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

  const ssh = await waitForSsh({
    host: address,
    port: p.ssh_port,
    ...sshWaitTiming(p.ssh_wait_seconds),
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
