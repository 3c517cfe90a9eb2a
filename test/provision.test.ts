// The provision stage against the local EC2/SSM server and an SSH banner stub: the launch
// request's shape, reuse, start of a stopped instance, spot, security groups, the SSH wait, and
// provider local. Credentials are fake and must never show up anywhere.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { Ajv } from 'ajv';
import { cacheIdOf } from '../runner/hosts/cache-id.js';
import { provisionStage, readHostInfo, type ProvisionParams, type HostInfo } from '../stages/provision.js';
import { priceLine } from '../stages/provision-ec2.js';
import { maxHoursUserData, guardMinutes } from '../runner/hosts/ec2/user-data.js';
import { runInstancesInput } from '../runner/hosts/ec2/ec2.js';
import { waitForSsh, probeSsh, sshArgs } from '../runner/hosts/ec2/ssh-wait.js';
import { parseNvidiaSmiList } from '../stages/local-host.js';
import { StageError } from '../runner/types.js';
import { makeTestContext, type TestContext } from './helpers/stage-context.js';
import { Ec2Server, useFakeAwsEnv, startSshStub, closedPort, FAKE_SECRET, FAKE_ACCESS_KEY, DLAMI_PARAMETER } from './servers/ec2-server.js';

const ajv = new Ajv({ strict: true, useDefaults: true, allErrors: true });
const validate = ajv.compile(provisionStage.params);

function withDefaults(raw: Record<string, unknown>): ProvisionParams {
  const copy = structuredClone(raw);
  assert.ok(validate(copy), JSON.stringify(validate.errors));
  return copy as unknown as ProvisionParams;
}

let server: Ec2Server;
let ssh: Awaited<ReturnType<typeof startSshStub>>;
let restoreEnv: () => Promise<void>;
const tmpDirs: string[] = [];

before(async () => {
  restoreEnv = await useFakeAwsEnv();
  ssh = await startSshStub();
});
after(async () => {
  await ssh.close();
  await restoreEnv();
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});
beforeEach(async () => {
  server = await Ec2Server.start({ publicIp: '127.0.0.1', publicDns: '' });
});
afterEach(async () => {
  await server.close();
});

async function cacheDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'pipe-prov-cache-'));
  tmpDirs.push(d);
  return d;
}

function ec2Params(over: Record<string, unknown> = {}): ProvisionParams {
  return withDefaults({
    provider: 'ec2',
    endpoint: server.url,
    ssh_port: ssh.port,
    ssh_wait_seconds: 3,
    key_name: 'pipe-test',
    ssh_key: '/keys/id_test',
    ...over,
  });
}

interface Ran {
  ctx: TestContext<ProvisionParams>;
  host: HostInfo;
  summary: string | undefined;
}

async function runProvision(params: ProvisionParams, cacheRoot: string, stageId = 'gpu'): Promise<Ran> {
  const base = await makeTestContext(params, { workDir: path.join(cacheRoot, 'work', 'somekey'), stageId });
  const ctx = { ...base, pipelineName: 'dogscats' };
  try {
    const result = await provisionStage.run(ctx);
    const host = await readHostInfo(ctx.outDir);
    return { ctx, host, summary: result?.summary };
  } finally {
    tmpDirs.push(path.dirname(base.outDir));
  }
}

/** Everything a run left behind that a secret could leak into. */
async function assertNoSecret(ran: Ran | undefined, extra: string[] = []): Promise<void> {
  const texts = [...extra, JSON.stringify(server.requests)];
  if (ran) {
    texts.push(...ran.ctx.logs);
    for (const f of await readdir(ran.ctx.outDir)) texts.push(await readFile(path.join(ran.ctx.outDir, f), 'utf8'));
  }
  for (const t of texts) {
    assert.ok(!t.includes(FAKE_SECRET), `secret leaked: ${t.slice(0, 200)}`);
    assert.ok(!t.includes(FAKE_ACCESS_KEY), `access key id leaked: ${t.slice(0, 200)}`);
  }
}

function tagsOf(params: Readonly<Record<string, string>>, spec = 1): Record<string, string> {
  const tags: Record<string, string> = {};
  for (let t = 1; params[`TagSpecification.${spec}.Tag.${t}.Key`] !== undefined; t++)
    tags[params[`TagSpecification.${spec}.Tag.${t}.Key`]!] = params[`TagSpecification.${spec}.Tag.${t}.Value`]!;
  return tags;
}

test('the params schema compiles strictly, fills defaults and rejects reserved tags', () => {
  const p = withDefaults({});
  assert.equal(p.provider, 'local');
  assert.equal(p.instance_type, 'g4dn.xlarge');
  assert.equal(p.ami_type, 'base-oss-nvidia-driver-gpu-ubuntu-22.04');
  assert.equal(p.max_hours, 4);
  assert.equal(p.volume_gb, 100);
  assert.equal(p.ssh_user, 'ubuntu');
  assert.equal(p.ssh_port, 22);
  assert.equal(p.spot, false);
  assert.equal(validate({ tags: { 'pipe:stage': 'x' } }), false);
  assert.equal(validate({ bogus: 1 }), false);
  assert.equal(validate({ ami: 'not-an-ami' }), false);
  assert.equal(provisionStage.cache, 'never');
  assert.equal(provisionStage.output, 'host');
  assert.deepEqual(provisionStage.inputs, {});
  assert.deepEqual(provisionStage.keyExclude, ['endpoint']);
});

test('launch: RunInstances carries the DLAMI from SSM, tags, the max_hours guard and terminate-on-shutdown', async () => {
  const root = await cacheDir();
  const ran = await runProvision(ec2Params(), root);
  const get = server.last('GetParameter');
  assert.equal(get?.params.Name, DLAMI_PARAMETER);
  const run = server.last('RunInstances');
  assert.ok(run, `no RunInstances in ${server.actions().join(',')}`);
  const p = run.params;
  assert.equal(p.Version, '2016-11-15');
  assert.equal(p.ImageId, 'ami-0123456789abcdef0');
  assert.equal(p.InstanceType, 'g4dn.xlarge');
  assert.equal(p.MinCount, '1');
  assert.equal(p.MaxCount, '1');
  assert.equal(p.KeyName, 'pipe-test');
  assert.equal(p.InstanceInitiatedShutdownBehavior, 'terminate');
  assert.equal(p['BlockDeviceMapping.1.DeviceName'], '/dev/sda1');
  assert.equal(p['BlockDeviceMapping.1.Ebs.VolumeSize'], '100');
  assert.equal(p['BlockDeviceMapping.1.Ebs.VolumeType'], 'gp3');
  assert.equal(p['MetadataOptions.HttpTokens'], 'required');
  assert.match(p['SecurityGroupId.1'] ?? '', /^sg-/);
  assert.equal(p['InstanceMarketOptions.MarketType'], undefined);
  assert.equal(p['TagSpecification.1.ResourceType'], 'instance');
  assert.equal(p['TagSpecification.2.ResourceType'], 'volume');
  const tags = tagsOf(p);
  assert.equal(tags['pipe:pipeline'], 'dogscats');
  assert.equal(tags['pipe:stage'], 'gpu');
  assert.equal(tags['pipe:cache'], cacheIdOf(root));
  assert.match(tags['pipe:cache']!, /^[0-9a-f]{16}$/, 'the cache tag is a hash, not a path');
  assert.equal(tags.Name, 'pipe-dogscats-gpu');
  const userData = Buffer.from(p.UserData ?? '', 'base64').toString('utf8');
  assert.match(userData, /^#!\/bin\/bash/);
  assert.match(userData, /shutdown -h \+240 /);
  assert.match(userData, /per-boot/);
  // Security group: created in the default VPC, SSH only.
  assert.equal(server.last('CreateSecurityGroup')?.params.GroupName, 'pipe-ssh');
  const auth = server.last('AuthorizeSecurityGroupIngress')!.params;
  assert.equal(auth['IpPermissions.1.IpProtocol'], 'tcp');
  assert.equal(auth['IpPermissions.1.FromPort'], String(ssh.port));
  assert.equal(auth['IpPermissions.1.ToPort'], String(ssh.port));
  assert.equal(auth['IpPermissions.1.IpRanges.1.CidrIp'], '0.0.0.0/0');
  assert.ok(
    server.requests.every((r) => r.signed),
    'every request is SigV4-signed',
  );

  const h = ran.host;
  assert.equal(h.provider, 'ec2');
  assert.match(h.instanceId ?? '', /^i-/);
  assert.equal(h.region, 'us-east-1');
  assert.equal(h.instanceType, 'g4dn.xlarge');
  assert.equal(h.address, '127.0.0.1');
  assert.equal(h.sshUser, 'ubuntu');
  assert.equal(h.sshPort, ssh.port);
  assert.equal(h.sshKey, '/keys/id_test');
  assert.equal(h.cores, 4);
  assert.equal(h.memoryGb, 16);
  assert.deepEqual(h.gpus, ['NVIDIA T4']);
  assert.equal(h.backend, 'tensorflow-gpu');
  assert.equal(h.maxHours, 4);
  assert.ok(
    ran.ctx.logs.some((l) => l.includes('~$0.53/h') && l.includes('approximate on-demand us-east-1')),
    ran.ctx.logs.join('\n'),
  );
  assert.ok(
    ran.ctx.logs.some((l) => l.includes('max_hours guard') && l.includes('4h')),
    ran.ctx.logs.join('\n'),
  );
  assert.ok(ran.ctx.logs.some((l) => l.includes('SSH answers') && l.includes('SSH-2.0-OpenSSH_9.2')));
  assert.match(ran.summary ?? '', /launched/);
  await assertNoSecret(ran);
});

test('a second run reuses the running instance: no second RunInstances, no AMI lookup', async () => {
  const root = await cacheDir();
  const first = await runProvision(ec2Params(), root);
  const before = server.requests.length;
  const second = await runProvision(ec2Params(), root);
  assert.equal(server.count('RunInstances'), 1);
  const later = server.requests.slice(before).map((r) => r.action);
  assert.deepEqual(later, ['DescribeInstances'], `second run asked ${later.join(',')}`);
  assert.equal(second.host.instanceId, first.host.instanceId);
  assert.match(second.summary ?? '', /reused/);
  assert.ok(second.ctx.logs.some((l) => l.includes('reusing running instance')));
  // Another cache directory is another set of hosts.
  const other = await runProvision(ec2Params(), await cacheDir());
  assert.notEqual(other.host.instanceId, first.host.instanceId);
  assert.equal(server.count('RunInstances'), 2);
});

test('a stopped instance with the tags is started, a pending one is waited for', async () => {
  const root = await cacheDir();
  const tags = { 'pipe:pipeline': 'dogscats', 'pipe:stage': 'gpu', 'pipe:cache': cacheIdOf(root), 'pipe:max-hours': '4' };
  const stopped = server.addInstance({ state: 'stopped', tags });
  const ran = await runProvision(ec2Params(), root);
  assert.equal(server.count('RunInstances'), 0);
  assert.equal(server.last('StartInstances')?.params['InstanceId.1'], stopped.id);
  assert.equal(ran.host.instanceId, stopped.id);
  assert.equal(server.instances.get(stopped.id)?.state, 'running');
  assert.match(ran.summary ?? '', /started/);

  const root2 = await cacheDir();
  const pending = server.addInstance({ state: 'pending', tags: { ...tags, 'pipe:cache': cacheIdOf(root2) } });
  const waited = await runProvision(ec2Params(), root2);
  assert.equal(server.count('RunInstances'), 0);
  assert.equal(waited.host.instanceId, pending.id);
  assert.match(waited.summary ?? '', /waited/);
});

test('spot: InstanceMarketOptions asks for a one-time spot instance', async () => {
  const ran = await runProvision(ec2Params({ spot: true, instance_type: 'g5.xlarge', max_hours: 1.5, volume_gb: 60 }), await cacheDir());
  const p = server.last('RunInstances')!.params;
  assert.equal(p['InstanceMarketOptions.MarketType'], 'spot');
  assert.equal(p['InstanceMarketOptions.SpotOptions.SpotInstanceType'], 'one-time');
  assert.equal(p.InstanceType, 'g5.xlarge');
  assert.equal(p['BlockDeviceMapping.1.Ebs.VolumeSize'], '60');
  assert.match(Buffer.from(p.UserData!, 'base64').toString(), /shutdown -h \+90 /);
  assert.equal(ran.host.spot, true);
  assert.deepEqual(ran.host.gpus, ['NVIDIA A10G']);
  assert.ok(ran.ctx.logs.some((l) => l.includes('~$1.01/h') && l.includes('spot')));
});

test('explicit ami, ssh_cidr, subnet and max_hours 0', async () => {
  server.images.set('ami-0aaaaaaaaaaaaaaa1', { id: 'ami-0aaaaaaaaaaaaaaa1', name: 'custom', rootDevice: '/dev/xvda' });
  server.subnets.set('subnet-0abc', { id: 'subnet-0abc', vpcId: 'vpc-0123', az: 'us-east-1b' });
  const ran = await runProvision(
    ec2Params({ ami: 'ami-0aaaaaaaaaaaaaaa1', ssh_cidr: '203.0.113.7/32', subnet: 'subnet-0abc', max_hours: 0, security_group: 'lab' }),
    await cacheDir(),
  );
  assert.equal(server.count('GetParameter'), 0);
  const p = server.last('RunInstances')!.params;
  assert.equal(p.ImageId, 'ami-0aaaaaaaaaaaaaaa1');
  assert.equal(p.SubnetId, 'subnet-0abc');
  assert.equal(p['BlockDeviceMapping.1.DeviceName'], '/dev/xvda');
  assert.equal(p.UserData, undefined, 'max_hours 0: no guard');
  assert.equal(server.last('CreateSecurityGroup')?.params.VpcId, 'vpc-0123');
  assert.equal(server.last('AuthorizeSecurityGroupIngress')?.params['IpPermissions.1.IpRanges.1.CidrIp'], '203.0.113.7/32');
  assert.ok(ran.ctx.logs.some((l) => l.includes('no max_hours guard')));

  // The group exists now: a second launch (another cache) reuses it and adds nothing.
  const authBefore = server.count('AuthorizeSecurityGroupIngress');
  await runProvision(ec2Params({ ami: 'ami-0aaaaaaaaaaaaaaa1', ssh_cidr: '203.0.113.7/32', subnet: 'subnet-0abc', security_group: 'lab' }), await cacheDir());
  assert.equal(server.count('CreateSecurityGroup'), 1);
  assert.equal(server.count('AuthorizeSecurityGroupIngress'), authBefore);
  // A new caller address is added to the existing group.
  await runProvision(ec2Params({ ami: 'ami-0aaaaaaaaaaaaaaa1', ssh_cidr: '198.51.100.9/32', subnet: 'subnet-0abc', security_group: 'lab' }), await cacheDir());
  assert.equal(server.last('AuthorizeSecurityGroupIngress')?.params['IpPermissions.1.IpRanges.1.CidrIp'], '198.51.100.9/32');
});

test('SSH never answering fails with the instance id and how to look', async () => {
  const port = await closedPort();
  await assert.rejects(runProvision(ec2Params({ ssh_port: port, ssh_wait_seconds: 1 }), await cacheDir()), (e: unknown) => {
    assert.ok(e instanceof StageError);
    const id = [...server.instances.keys()][0]!;
    assert.match(e.message, new RegExp(`instance ${id}`));
    assert.match(e.message, /did not answer within 1s/);
    assert.match(e.hint ?? '', new RegExp(`aws ec2 get-console-output --instance-id ${id} --region us-east-1`));
    return true;
  });
});

test('waitForSsh: a banner succeeds, a closed port or a silent server times out', async () => {
  const ok = await waitForSsh({ host: '127.0.0.1', port: ssh.port, timeoutMs: 2000, intervalMs: 50 });
  assert.equal(ok.banner, 'SSH-2.0-OpenSSH_9.2');
  assert.equal(ok.attempts, 1);

  const port = await closedPort();
  const started = Date.now();
  await assert.rejects(
    waitForSsh({ host: '127.0.0.1', port, timeoutMs: 400, intervalMs: 50, instanceId: 'i-0feedface', region: 'eu-west-1' }),
    (e: unknown) => {
      assert.ok(e instanceof StageError);
      assert.match(e.message, /i-0feedface/);
      assert.match(e.message, /ECONNREFUSED/);
      assert.match(e.hint ?? '', /get-console-output --instance-id i-0feedface --region eu-west-1/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 2000);

  // Accepts but never speaks SSH (a half-open forwarder, or sshd not up behind a proxy).
  const silent = net.createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as net.AddressInfo).port;
  await assert.rejects(probeSsh('127.0.0.1', silentPort, 200), /timeout/);
  silent.close();

  // Lines before the identification line are allowed (RFC 4253).
  const chatty = await startSshStub('hello\r\nSSH-2.0-dropbear');
  assert.equal((await probeSsh('127.0.0.1', chatty.port, 1000)).banner, 'SSH-2.0-dropbear');
  await chatty.close();
});

test('sshArgs builds a non-interactive ssh command line from a host', () => {
  const args = sshArgs({ address: 'h.example', sshUser: 'ubuntu', sshPort: 2222, sshKey: '/k' }, { knownHostsFile: '/kh' });
  const joined = args.join(' ');
  assert.match(joined, /-o BatchMode=yes/);
  assert.match(joined, /-p 2222/);
  assert.match(joined, /-i \/k/);
  assert.match(joined, /UserKnownHostsFile=\/kh/);
  assert.equal(args.at(-1), 'ubuntu@h.example');
  assert.ok(!sshArgs({ address: 'h', sshUser: 'u', sshPort: 22 }).includes('-p'));
  assert.equal(sshArgs({ address: 'h', sshUser: 'u' }).at(-1), 'u@h');
});

test('provider local records this machine, with no AWS request', async () => {
  const ran = await runProvision(withDefaults({ provider: 'local' }), await cacheDir());
  assert.equal(ran.host.provider, 'local');
  assert.equal(ran.host.address, 'localhost');
  assert.ok(ran.host.cores >= 1);
  assert.ok(ran.host.memoryGb > 0);
  assert.ok(ran.host.cpu.length > 0);
  assert.ok(Array.isArray(ran.host.gpus));
  assert.ok(['tensorflow-gpu', 'tensorflow', 'wasm'].includes(ran.host.backend));
  assert.equal(ran.host.instanceId, undefined);
  assert.equal(server.requests.length, 0);
});

test('helpers: user data, run request, nvidia-smi parsing, price lines', () => {
  assert.equal(guardMinutes(0), undefined);
  assert.equal(guardMinutes(4), 240);
  assert.equal(maxHoursUserData(0), undefined);
  assert.match(maxHoursUserData(0.5)!, /shutdown -h \+30 /);
  const input = runInstancesInput({ imageId: 'ami-1', instanceType: 'g6.xlarge', spot: false, volumeGb: 80, tags: { a: 'b' } });
  assert.equal(input.InstanceInitiatedShutdownBehavior, 'terminate');
  assert.equal(input.InstanceMarketOptions, undefined);
  assert.deepEqual(input.TagSpecifications?.[0], { ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] });
  assert.deepEqual(parseNvidiaSmiList('GPU 0: NVIDIA H200 (UUID: GPU-1234)\nGPU 1: Tesla T4 (UUID: GPU-5678)\n'), ['NVIDIA H200', 'Tesla T4']);
  assert.deepEqual(parseNvidiaSmiList('NVIDIA-SMI has failed'), []);
  assert.match(priceLine('p3.2xlarge', false), /~\$3\.06\/h/);
  assert.match(priceLine('x9.huge', false), /not in pipe's table/);
});
