// A local stand-in for EC2 (Query API: POST /, form-encoded, XML answers) and SSM GetParameter
// (JSON API, X-Amz-Target: AmazonSSM.GetParameter), enough for the AWS SDK pointed at it with
// `endpoint`. Instances live in memory and move pending -> running (stopping -> stopped,
// shutting-down -> terminated) after a few DescribeInstances. Every request is recorded
// (action + flat params) so tests assert on the wire shape; faults can be injected per action.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export interface RecordedRequest {
  readonly action: string;
  readonly params: Readonly<Record<string, string>>;
  /** Whether the request carried a SigV4 Authorization header. */
  readonly signed: boolean;
}

export interface FakeInstance {
  id: string;
  state: string;
  type: string;
  imageId: string;
  launchTime: Date;
  tags: Record<string, string>;
  spot: boolean;
  publicIp?: string;
  publicDns?: string;
  privateIp: string;
  az: string;
  keyName?: string;
  /** Why it is in its state ("Server.SpotInstanceTermination: ..."). */
  stateReason?: { code: string; message: string };
  /** DescribeInstances calls seen in the current transitional state. */
  describes: number;
}

export interface FakeGroup {
  id: string;
  name: string;
  vpcId: string;
  rules: { protocol: string; from: number; to: number; cidr: string }[];
}

export interface Fault {
  code: string;
  message?: string;
  status?: number;
  /** How many requests fail (default: all of them until cleared). */
  times?: number;
}

export interface Ec2ServerOptions {
  /** DescribeInstances calls an instance stays in a transitional state (default 1). */
  transitionAfter?: number;
  /** Public address given to running instances (tests: 127.0.0.1, to reach a local SSH stub). */
  publicIp?: string;
  /** Public DNS name given to running instances ('' for none). */
  publicDns?: string;
  defaultVpcId?: string;
  /** Called with each instance RunInstances creates (e.g. to make it die while pending). */
  onLaunch?: (instance: FakeInstance) => void;
}

const TRANSITIONS: Readonly<Record<string, string>> = { pending: 'running', stopping: 'stopped', 'shutting-down': 'terminated' };
const STATE_CODES: Readonly<Record<string, number>> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

export const DLAMI_PARAMETER = '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function el(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${esc(String(value))}</${name}>`;
}

/** `Prefix.1`, `Prefix.2`, ... values. */
function listParam(params: Record<string, string>, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params[`${prefix}.${i}`] !== undefined; i++) out.push(params[`${prefix}.${i}`]!);
  return out;
}

function filtersOf(params: Record<string, string>): { name: string; values: string[] }[] {
  const out: { name: string; values: string[] }[] = [];
  for (let i = 1; params[`Filter.${i}.Name`] !== undefined; i++)
    out.push({ name: params[`Filter.${i}.Name`]!, values: listParam(params, `Filter.${i}.Value`) });
  return out;
}

class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export class Ec2Server {
  readonly requests: RecordedRequest[] = [];
  readonly instances = new Map<string, FakeInstance>();
  readonly groups = new Map<string, FakeGroup>();
  readonly subnets = new Map<string, { id: string; vpcId: string; az: string }>();
  readonly images = new Map<string, { id: string; name: string; rootDevice: string }>();
  readonly ssmParameters = new Map<string, string>([[DLAMI_PARAMETER, 'ami-0123456789abcdef0']]);
  private readonly faults = new Map<string, Fault>();
  private server: http.Server | undefined;
  private counter = 0;
  url = '';

  constructor(readonly options: Ec2ServerOptions = {}) {
    this.images.set('ami-0123456789abcdef0', {
      id: 'ami-0123456789abcdef0',
      name: 'Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261128',
      rootDevice: '/dev/sda1',
    });
  }

  static async start(options: Ec2ServerOptions = {}): Promise<Ec2Server> {
    const s = new Ec2Server(options);
    await s.listen();
    return s;
  }

  async listen(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
    this.server = undefined;
  }

  /** Make `action` (e.g. "RunInstances", "GetParameter") fail with `code`. */
  fail(action: string, fault: Fault): void {
    this.faults.set(action, { ...fault });
  }

  clearFaults(): void {
    this.faults.clear();
  }

  actions(): string[] {
    return this.requests.map((r) => r.action);
  }

  count(action: string): number {
    return this.requests.filter((r) => r.action === action).length;
  }

  last(action: string): RecordedRequest | undefined {
    return [...this.requests].reverse().find((r) => r.action === action);
  }

  /** Put an instance in place directly (to test reuse and `pipe down` without launching). */
  addInstance(partial: Partial<FakeInstance> & { tags: Record<string, string> }): FakeInstance {
    const id = partial.id ?? this.nextId('i-');
    const inst: FakeInstance = {
      id,
      state: 'running',
      type: 'g4dn.xlarge',
      imageId: 'ami-0123456789abcdef0',
      launchTime: new Date(),
      spot: false,
      privateIp: `10.0.0.${this.instances.size + 10}`,
      az: 'us-east-1a',
      describes: 0,
      ...partial,
    };
    // Only running instances have a public address, like EC2 without Elastic IPs.
    if (inst.state === 'running' && partial.publicIp === undefined && partial.publicDns === undefined) Object.assign(inst, this.addresses());
    this.instances.set(id, inst);
    return inst;
  }

  private addresses(): { publicIp?: string; publicDns?: string } {
    return {
      ...(this.options.publicIp !== '' ? { publicIp: this.options.publicIp ?? '198.51.100.7' } : {}),
      ...(this.options.publicDns !== '' ? { publicDns: this.options.publicDns ?? 'ec2-198-51-100-7.compute-1.amazonaws.com' } : {}),
    };
  }

  private nextId(prefix: string): string {
    return `${prefix}${(0x0abc0000 + ++this.counter).toString(16).padStart(17, '0')}`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const signed = /^AWS4-HMAC-SHA256 Credential=/.test(String(req.headers.authorization ?? ''));
    const target = req.headers['x-amz-target'];
    if (typeof target === 'string') return this.handleJson(target, body, signed, res);
    const params: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(body)) params[k] = v;
    const action = params.Action ?? '';
    this.requests.push({ action, params, signed });
    try {
      this.maybeFail(action);
      const xml = this.dispatch(action, params);
      res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NS}"><requestId>req-${this.requests.length}</requestId>${xml}</${action}Response>`,
      );
    } catch (e) {
      const err = e instanceof Ec2Error ? e : new Ec2Error('InternalError', (e as Error).message, 500);
      res.writeHead(err.status, { 'content-type': 'text/xml;charset=UTF-8' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(err.code)}</Code><Message>${esc(err.message)}</Message></Error></Errors><RequestID>req-${this.requests.length}</RequestID></Response>`,
      );
    }
  }

  private maybeFail(action: string): void {
    const f = this.faults.get(action);
    if (!f) return;
    if (f.times !== undefined) {
      f.times -= 1;
      if (f.times <= 0) this.faults.delete(action);
    }
    const status = f.status ?? (f.code.startsWith('Insufficient') ? 500 : f.code === 'AuthFailure' ? 401 : f.code === 'UnauthorizedOperation' ? 403 : 400);
    throw new Ec2Error(f.code, f.message ?? `${f.code} (injected by the test server)`, status);
  }

  private handleJson(target: string, body: string, signed: boolean, res: http.ServerResponse): void {
    const action = target.replace(/^AmazonSSM\./, '');
    let input: Record<string, unknown> = {};
    try {
      input = JSON.parse(body || '{}') as Record<string, unknown>;
    } catch {
      // recorded as empty
    }
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(input)) params[k] = String(v);
    this.requests.push({ action, params, signed });
    const send = (status: number, obj: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(obj));
    };
    try {
      this.maybeFail(action);
    } catch (e) {
      const err = e as Ec2Error;
      return send(err.status, { __type: err.code, message: err.message });
    }
    if (action !== 'GetParameter') return send(400, { __type: 'InvalidAction', message: `unsupported ${action}` });
    const name = String(input.Name ?? '');
    const value = this.ssmParameters.get(name);
    if (value === undefined) return send(400, { __type: 'ParameterNotFound', message: '' });
    send(200, { Parameter: { Name: name, Type: 'String', Value: value, Version: 1, DataType: 'text', ARN: `arn:aws:ssm:us-east-1::parameter${name}` } });
  }

  private dispatch(action: string, p: Record<string, string>): string {
    switch (action) {
      case 'RunInstances':
        return this.runInstances(p);
      case 'DescribeInstances':
        return this.describeInstances(p);
      case 'StartInstances':
        return this.changeState(p, (i) => (i.state === 'stopped' ? 'pending' : undefined), ['stopped', 'pending', 'running']);
      case 'StopInstances':
        return this.changeState(p, (i) => (i.state === 'running' ? 'stopping' : undefined), ['running', 'stopping', 'stopped'], true);
      case 'TerminateInstances':
        return this.changeState(p, (i) => (i.state === 'terminated' ? undefined : 'shutting-down'), undefined);
      case 'CreateTags': {
        for (const id of listParam(p, 'ResourceId')) {
          const inst = this.instances.get(id);
          if (!inst) continue;
          for (let t = 1; p[`Tag.${t}.Key`] !== undefined; t++) inst.tags[p[`Tag.${t}.Key`]!] = p[`Tag.${t}.Value`] ?? '';
        }
        return el('return', true);
      }
      case 'DescribeImages': {
        const ids = listParam(p, 'ImageId');
        const imgs = [...this.images.values()].filter((i) => ids.length === 0 || ids.includes(i.id));
        if (ids.length && imgs.length === 0) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${ids.join(', ')}]' does not exist`);
        return `<imagesSet>${imgs.map((i) => `<item>${el('imageId', i.id)}${el('imageState', 'available')}${el('name', i.name)}${el('architecture', 'x86_64')}${el('rootDeviceName', i.rootDevice)}${el('rootDeviceType', 'ebs')}</item>`).join('')}</imagesSet>`;
      }
      case 'DescribeSubnets': {
        const ids = listParam(p, 'SubnetId');
        const found = ids.map((id) => this.subnets.get(id));
        if (found.some((s) => !s)) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${ids.join(',')}' does not exist`);
        return `<subnetSet>${found.map((s) => `<item>${el('subnetId', s!.id)}${el('vpcId', s!.vpcId)}${el('availabilityZone', s!.az)}</item>`).join('')}</subnetSet>`;
      }
      case 'DescribeSecurityGroups':
        return this.describeGroups(p);
      case 'CreateSecurityGroup': {
        const name = p.GroupName ?? '';
        const vpcId = p.VpcId ?? this.options.defaultVpcId ?? 'vpc-default';
        if ([...this.groups.values()].some((g) => g.name === name && g.vpcId === vpcId))
          throw new Ec2Error('InvalidGroup.Duplicate', `The security group '${name}' already exists`);
        const id = this.nextId('sg-');
        this.groups.set(id, { id, name, vpcId, rules: [] });
        return `${el('return', true)}${el('groupId', id)}`;
      }
      case 'AuthorizeSecurityGroupIngress': {
        const g = this.groups.get(p.GroupId ?? '');
        if (!g) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${p.GroupId}' does not exist`);
        for (let i = 1; p[`IpPermissions.${i}.IpProtocol`] !== undefined; i++) {
          for (let r = 1; p[`IpPermissions.${i}.IpRanges.${r}.CidrIp`] !== undefined; r++) {
            const rule = {
              protocol: p[`IpPermissions.${i}.IpProtocol`]!,
              from: Number(p[`IpPermissions.${i}.FromPort`]),
              to: Number(p[`IpPermissions.${i}.ToPort`]),
              cidr: p[`IpPermissions.${i}.IpRanges.${r}.CidrIp`]!,
            };
            if (g.rules.some((x) => x.protocol === rule.protocol && x.from === rule.from && x.to === rule.to && x.cidr === rule.cidr))
              throw new Ec2Error('InvalidPermission.Duplicate', 'the specified rule already exists');
            g.rules.push(rule);
          }
        }
        return el('return', true);
      }
      case 'DescribeSpotPriceHistory':
        return `<spotPriceHistorySet><item>${el('instanceType', p['InstanceType.1'] ?? 'g4dn.xlarge')}${el('productDescription', 'Linux/UNIX')}${el('spotPrice', '0.2100')}${el('timestamp', new Date().toISOString())}${el('availabilityZone', 'us-east-1a')}</item></spotPriceHistorySet>`;
      default:
        throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
    }
  }

  private runInstances(p: Record<string, string>): string {
    const type = p.InstanceType ?? 'm1.small';
    const imageId = p.ImageId ?? '';
    if (!this.images.has(imageId)) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
    const tags: Record<string, string> = {};
    for (let s = 1; p[`TagSpecification.${s}.ResourceType`] !== undefined; s++) {
      if (p[`TagSpecification.${s}.ResourceType`] !== 'instance') continue;
      for (let t = 1; p[`TagSpecification.${s}.Tag.${t}.Key`] !== undefined; t++)
        tags[p[`TagSpecification.${s}.Tag.${t}.Key`]!] = p[`TagSpecification.${s}.Tag.${t}.Value`] ?? '';
    }
    const inst = this.addInstance({
      state: 'pending',
      type,
      imageId,
      tags,
      spot: p['InstanceMarketOptions.MarketType'] === 'spot',
      ...(p.KeyName ? { keyName: p.KeyName } : {}),
    });
    this.options.onLaunch?.(inst);
    return `${el('reservationId', this.nextId('r-'))}${el('ownerId', '123456789012')}<instancesSet>${this.instanceXml(inst)}</instancesSet>`;
  }

  private advance(inst: FakeInstance): void {
    const next = TRANSITIONS[inst.state];
    if (!next) return;
    inst.describes += 1;
    if (inst.describes < (this.options.transitionAfter ?? 1)) return;
    inst.state = next;
    inst.describes = 0;
    if (next === 'running') {
      Object.assign(inst, this.addresses());
      inst.launchTime = new Date(); // EC2's LaunchTime is the last start
    }
    if (next === 'stopped' || next === 'terminated') {
      delete inst.publicIp;
      delete inst.publicDns;
    }
  }

  private describeInstances(p: Record<string, string>): string {
    const ids = listParam(p, 'InstanceId');
    for (const id of ids) if (!this.instances.has(id)) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    const filters = filtersOf(p);
    const matched = [...this.instances.values()].filter((inst) => {
      if (ids.length && !ids.includes(inst.id)) return false;
      return filters.every((f) => {
        if (f.name === 'instance-state-name') return f.values.includes(inst.state);
        if (f.name === 'instance-id') return f.values.includes(inst.id);
        if (f.name === 'instance-type') return f.values.includes(inst.type);
        if (f.name === 'tag-key') return f.values.some((k) => k in inst.tags);
        if (f.name.startsWith('tag:')) {
          const v = inst.tags[f.name.slice(4)];
          return v !== undefined && f.values.includes(v);
        }
        throw new Ec2Error('InvalidParameterValue', `The filter '${f.name}' is invalid`);
      });
    });
    // State moves as seen from outside: the answer shows the state before this describe advanced it.
    const xml = matched
      .map(
        (inst) =>
          `<item>${el('reservationId', `r-${inst.id.slice(2)}`)}${el('ownerId', '123456789012')}<instancesSet>${this.instanceXml(inst)}</instancesSet></item>`,
      )
      .join('');
    for (const inst of matched) this.advance(inst);
    return `<reservationSet>${xml}</reservationSet>`;
  }

  private instanceXml(i: FakeInstance): string {
    const tags = Object.entries(i.tags)
      .map(([k, v]) => `<item>${el('key', k)}${el('value', v)}</item>`)
      .join('');
    return `<item>${el('instanceId', i.id)}${el('imageId', i.imageId)}<instanceState>${el('code', STATE_CODES[i.state] ?? 0)}${el('name', i.state)}</instanceState>${el('privateDnsName', `ip-${i.privateIp.replace(/\./g, '-')}.ec2.internal`)}${el('dnsName', i.publicDns ?? '')}${el('keyName', i.keyName)}${el('instanceType', i.type)}${el('launchTime', i.launchTime.toISOString())}<placement>${el('availabilityZone', i.az)}</placement>${el('privateIpAddress', i.privateIp)}${el('ipAddress', i.publicIp)}${i.spot ? el('instanceLifecycle', 'spot') : ''}${i.stateReason ? `<stateReason>${el('code', i.stateReason.code)}${el('message', i.stateReason.message)}</stateReason>` : ''}<cpuOptions>${el('coreCount', 2)}${el('threadsPerCore', 2)}</cpuOptions><tagSet>${tags}</tagSet></item>`;
  }

  private changeState(
    p: Record<string, string>,
    next: (i: FakeInstance) => string | undefined,
    allowed: readonly string[] | undefined,
    stopping = false,
  ): string {
    const ids = listParam(p, 'InstanceId');
    const items: string[] = [];
    for (const id of ids) {
      const inst = this.instances.get(id);
      if (!inst) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
      if (allowed && !allowed.includes(inst.state))
        throw new Ec2Error('IncorrectInstanceState', `The instance '${id}' is not in a state from which it can be ${stopping ? 'stopped' : 'started'}.`);
      if (stopping && inst.spot)
        throw new Ec2Error('UnsupportedOperation', `You can't stop the Spot Instance '${id}' because it is associated with a one-time Spot Instance request.`);
    }
    for (const id of ids) {
      const inst = this.instances.get(id)!;
      const previous = inst.state;
      const to = next(inst);
      if (to) {
        inst.state = to;
        inst.describes = 0;
      }
      items.push(
        `<item>${el('instanceId', id)}<currentState>${el('code', STATE_CODES[inst.state] ?? 0)}${el('name', inst.state)}</currentState><previousState>${el('code', STATE_CODES[previous] ?? 0)}${el('name', previous)}</previousState></item>`,
      );
    }
    // StartingInstances / StoppingInstances / TerminatingInstances are all `instancesSet` on the wire.
    return `<instancesSet>${items.join('')}</instancesSet>`;
  }

  private describeGroups(p: Record<string, string>): string {
    const names = listParam(p, 'GroupName');
    const ids = listParam(p, 'GroupId');
    const filters = filtersOf(p);
    const defaultVpc = this.options.defaultVpcId ?? 'vpc-default';
    const matched = [...this.groups.values()].filter((g) => {
      if (names.length && !(names.includes(g.name) && g.vpcId === defaultVpc)) return false;
      if (ids.length && !ids.includes(g.id)) return false;
      return filters.every((f) =>
        f.name === 'group-name'
          ? f.values.includes(g.name)
          : f.name === 'vpc-id'
            ? f.values.includes(g.vpcId)
            : f.name === 'group-id'
              ? f.values.includes(g.id)
              : true,
      );
    });
    if (names.length && matched.length === 0)
      throw new Ec2Error('InvalidGroup.NotFound', `The security group '${names.join(',')}' does not exist in default VPC '${defaultVpc}'`);
    const xml = matched
      .map((g) => {
        const perms = g.rules
          .map(
            (r) =>
              `<item>${el('ipProtocol', r.protocol)}${el('fromPort', r.from)}${el('toPort', r.to)}<ipRanges><item>${el('cidrIp', r.cidr)}</item></ipRanges></item>`,
          )
          .join('');
        return `<item>${el('ownerId', '123456789012')}${el('groupId', g.id)}${el('groupName', g.name)}${el('groupDescription', 'pipe')}${el('vpcId', g.vpcId)}<ipPermissions>${perms}</ipPermissions></item>`;
      })
      .join('');
    return `<securityGroupInfo>${xml}</securityGroupInfo>`;
  }
}

// ---- helpers shared by the EC2 tests -------------------------------------------------------

export const FAKE_ACCESS_KEY = 'AKIAFAKEFAKEFAKE';
export const FAKE_SECRET = 'fake-secret-Wq7Tz3Kp9Lm2Xv8Rn4Bd6Hs1Jc5Yf0Ga';

/**
 * Point the AWS SDK's chain at fake credentials only: every AWS_* variable is cleared, the
 * shared config/credentials files are empty temp files, IMDS is off, and the waiters poll fast.
 * `credentials: false` leaves no credentials at all. Returns a function restoring the env.
 */
export async function useFakeAwsEnv(options: { credentials?: boolean; region?: string | false } = {}): Promise<() => Promise<void>> {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const saved = { ...process.env };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pipe-aws-env-'));
  await writeFile(path.join(dir, 'config'), '');
  await writeFile(path.join(dir, 'credentials'), '');
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
  process.env.AWS_CONFIG_FILE = path.join(dir, 'config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'credentials');
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  if (options.region !== false) process.env.AWS_REGION = options.region ?? 'us-east-1';
  if (options.credentials !== false) {
    process.env.AWS_ACCESS_KEY_ID = FAKE_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = FAKE_SECRET;
  }
  process.env.PIPE_EC2_WAIT_MIN_DELAY = '0.01';
  process.env.PIPE_EC2_WAIT_MAX_DELAY = '0.02';
  process.env.PIPE_EC2_WAIT_MAX_SECONDS = '5';
  return async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    await rm(dir, { recursive: true, force: true });
  };
}

/** A TCP server that greets like sshd ("SSH-2.0-OpenSSH_9.2") and hangs up. */
export async function startSshStub(banner = 'SSH-2.0-OpenSSH_9.2'): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const net = await import('node:net');
  let connections = 0;
  const sockets = new Set<import('node:net').Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.end(`${banner}\r\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const net = await import('node:net');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
