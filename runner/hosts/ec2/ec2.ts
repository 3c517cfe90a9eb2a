// EC2 host management for `provision`, `pipe hosts` and `pipe down`, through @aws-sdk/client-ec2
// with the standard credential chain. Instances are found by their pipe tags, never by local
// state: a second run (or another checkout of the same cache) finds what the first one made.
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  type Filter,
  type Instance,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../types.js';
import { StageError } from '../../types.js';
import { describeAwsError, errorCode } from './errors.js';
import { encodeUserData } from './user-data.js';

// The client wiring (connection, region, endpoint, credentials) has its own module; callers use
// this one as the whole EC2 client (`ec2.createEc2Client`, `ec2.ensureInstance`).
export * from './connection.js';

export const TAG_PIPELINE = 'pipe:pipeline';
export const TAG_STAGE = 'pipe:stage';
export const TAG_CACHE = 'pipe:cache';
export const TAG_MAX_HOURS = 'pipe:max-hours';

/** What pipe needs to know about one instance. */
export interface HostInstance {
  readonly id: string;
  readonly state: string;
  readonly type: string;
  readonly launchTime?: Date;
  readonly publicDns?: string;
  readonly publicIp?: string;
  readonly privateIp?: string;
  readonly availabilityZone?: string;
  readonly spot: boolean;
  readonly cores?: number;
  readonly stateReason?: string;
  readonly tags: Readonly<Record<string, string>>;
}

export function toHostInstance(i: Instance): HostInstance {
  const tags: Record<string, string> = {};
  for (const t of i.Tags ?? []) if (t.Key) tags[t.Key] = t.Value ?? '';
  const cores = i.CpuOptions?.CoreCount ? i.CpuOptions.CoreCount * (i.CpuOptions.ThreadsPerCore ?? 1) : undefined;
  return {
    id: i.InstanceId ?? '',
    state: i.State?.Name ?? 'unknown',
    type: i.InstanceType ?? 'unknown',
    ...(i.LaunchTime ? { launchTime: new Date(i.LaunchTime) } : {}),
    ...(i.PublicDnsName ? { publicDns: i.PublicDnsName } : {}),
    ...(i.PublicIpAddress ? { publicIp: i.PublicIpAddress } : {}),
    ...(i.PrivateIpAddress ? { privateIp: i.PrivateIpAddress } : {}),
    ...(i.Placement?.AvailabilityZone ? { availabilityZone: i.Placement.AvailabilityZone } : {}),
    spot: i.InstanceLifecycle === 'spot',
    ...(cores ? { cores } : {}),
    ...(i.StateReason?.Message ? { stateReason: i.StateReason.Message } : {}),
    tags,
  };
}

/** The address to reach an instance at: public DNS, else public IP. */
export function publicAddress(i: HostInstance): string | undefined {
  return i.publicDns || i.publicIp || undefined;
}

export const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'] as const;

export interface TagFilter {
  readonly pipeline?: string;
  readonly stage?: string;
  readonly cache?: string;
  /** Default: pending, running, stopping, stopped. */
  readonly states?: readonly string[];
}

function filtersOf(f: TagFilter): Filter[] {
  const filters: Filter[] = [];
  if (f.pipeline !== undefined) filters.push({ Name: `tag:${TAG_PIPELINE}`, Values: [f.pipeline] });
  else filters.push({ Name: 'tag-key', Values: [TAG_PIPELINE] });
  if (f.stage !== undefined) filters.push({ Name: `tag:${TAG_STAGE}`, Values: [f.stage] });
  if (f.cache !== undefined) filters.push({ Name: `tag:${TAG_CACHE}`, Values: [f.cache] });
  const states = f.states ?? LIVE_STATES;
  if (states.length) filters.push({ Name: 'instance-state-name', Values: [...states] });
  return filters;
}

/** Every instance carrying pipe's tags that matches, oldest launch first. */
export async function findInstances(client: EC2Client, filter: TagFilter, signal?: AbortSignal): Promise<HostInstance[]> {
  const out: HostInstance[] = [];
  let token: string | undefined;
  do {
    const res = await client.send(
      new DescribeInstancesCommand({ Filters: filtersOf(filter), ...(token ? { NextToken: token } : {}) }),
      signal ? { abortSignal: signal } : {},
    );
    for (const r of res.Reservations ?? []) for (const i of r.Instances ?? []) out.push(toHostInstance(i));
    token = res.NextToken;
  } while (token);
  return out.sort((a, b) => (a.launchTime?.getTime() ?? 0) - (b.launchTime?.getTime() ?? 0) || a.id.localeCompare(b.id));
}

export async function describeInstance(client: EC2Client, id: string, signal?: AbortSignal): Promise<HostInstance | undefined> {
  const res = await client.send(new DescribeInstancesCommand({ InstanceIds: [id] }), signal ? { abortSignal: signal } : {});
  const i = res.Reservations?.[0]?.Instances?.[0];
  return i ? toHostInstance(i) : undefined;
}

export interface LaunchSpec {
  readonly imageId: string;
  readonly instanceType: string;
  readonly keyName?: string;
  readonly securityGroupIds?: readonly string[];
  readonly subnetId?: string;
  readonly spot: boolean;
  readonly volumeGb: number;
  /** The AMI's root device, to size the root volume (e.g. /dev/sda1). */
  readonly rootDeviceName?: string;
  /** Plain-text user data (encoded here). */
  readonly userData?: string;
  readonly tags: Readonly<Record<string, string>>;
}

/** The RunInstances request: pure, so tests can check it without a server too. */
export function runInstancesInput(spec: LaunchSpec): RunInstancesCommandInput {
  const tags = Object.entries(spec.tags).map(([Key, Value]) => ({ Key, Value }));
  return {
    ImageId: spec.imageId,
    InstanceType: spec.instanceType as RunInstancesCommandInput['InstanceType'],
    MinCount: 1,
    MaxCount: 1,
    ClientToken: randomUUID(), // makes the SDK's own retries idempotent; a new run gets a new token
    ...(spec.keyName ? { KeyName: spec.keyName } : {}),
    ...(spec.securityGroupIds?.length ? { SecurityGroupIds: [...spec.securityGroupIds] } : {}),
    ...(spec.subnetId ? { SubnetId: spec.subnetId } : {}),
    ...(spec.userData ? { UserData: encodeUserData(spec.userData) } : {}),
    // The max_hours guard's `shutdown -h` then terminates the instance instead of stopping it.
    InstanceInitiatedShutdownBehavior: 'terminate',
    MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
    BlockDeviceMappings: [{ DeviceName: spec.rootDeviceName ?? '/dev/sda1', Ebs: { VolumeSize: spec.volumeGb, VolumeType: 'gp3', DeleteOnTermination: true } }],
    ...(spec.spot
      ? { InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } } }
      : {}),
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
      { ResourceType: 'volume', Tags: tags },
    ],
  };
}

export async function launchInstance(client: EC2Client, spec: LaunchSpec, signal?: AbortSignal): Promise<HostInstance> {
  const res = await client.send(new RunInstancesCommand(runInstancesInput(spec)), signal ? { abortSignal: signal } : {});
  const i = res.Instances?.[0];
  if (!i?.InstanceId) throw new StageError('RunInstances returned no instance');
  return toHostInstance(i);
}

export interface StateChange {
  readonly id: string;
  readonly previous: string;
  readonly current: string;
}

function changes(list: readonly { InstanceId?: string; PreviousState?: { Name?: string }; CurrentState?: { Name?: string } }[] | undefined): StateChange[] {
  return (list ?? []).map((c) => ({ id: c.InstanceId ?? '', previous: c.PreviousState?.Name ?? 'unknown', current: c.CurrentState?.Name ?? 'unknown' }));
}

export async function startInstances(client: EC2Client, ids: readonly string[], signal?: AbortSignal): Promise<StateChange[]> {
  const res = await client.send(new StartInstancesCommand({ InstanceIds: [...ids] }), signal ? { abortSignal: signal } : {});
  return changes(res.StartingInstances);
}

export async function stopInstances(client: EC2Client, ids: readonly string[], signal?: AbortSignal): Promise<StateChange[]> {
  const res = await client.send(new StopInstancesCommand({ InstanceIds: [...ids] }), signal ? { abortSignal: signal } : {});
  return changes(res.StoppingInstances);
}

export async function terminateInstances(client: EC2Client, ids: readonly string[], signal?: AbortSignal): Promise<StateChange[]> {
  const res = await client.send(new TerminateInstancesCommand({ InstanceIds: [...ids] }), signal ? { abortSignal: signal } : {});
  return changes(res.TerminatingInstances);
}

/** Waiter pacing, in seconds. */
export interface WaitTiming {
  readonly maxWaitSeconds: number;
  readonly minDelay: number;
  readonly maxDelay: number;
}

function envSeconds(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * Defaults poll every 5-15 s for up to 10 minutes (the SDK's own 15-120 s is slow for an
 * interactive command). PIPE_EC2_WAIT_MIN_DELAY / _MAX_DELAY / _MAX_SECONDS override (tests).
 */
export function waitTiming(overrides: Partial<WaitTiming> = {}): WaitTiming {
  const minDelay = overrides.minDelay ?? envSeconds('PIPE_EC2_WAIT_MIN_DELAY') ?? 5;
  const maxDelay = Math.max(minDelay, overrides.maxDelay ?? envSeconds('PIPE_EC2_WAIT_MAX_DELAY') ?? Math.max(15, minDelay));
  const maxWaitSeconds = Math.max(minDelay * 2, overrides.maxWaitSeconds ?? envSeconds('PIPE_EC2_WAIT_MAX_SECONDS') ?? 600);
  return { minDelay, maxDelay, maxWaitSeconds };
}

async function explainWaitFailure(client: EC2Client, id: string, wanted: string, e: unknown, region: string): Promise<StageError> {
  if (errorCode(e) === 'AbortError') return new StageError('interrupted');
  const now = await describeInstance(client, id).catch(() => undefined);
  if (now && now.state !== wanted) {
    const reason = now.stateReason ? `: ${now.stateReason}` : '';
    if (errorCode(e) === 'TimeoutError') {
      return new StageError(
        `instance ${id} is still "${now.state}" after waiting for "${wanted}"`,
        `look at it: \`aws ec2 describe-instances --instance-ids ${id} --region ${region}\``,
      );
    }
    return new StageError(
      `instance ${id} went to "${now.state}" instead of "${wanted}"${reason}`,
      now.spot
        ? 'spot capacity may have been reclaimed: retry, use another type or zone, or `spot: false`'
        : `look at it: \`aws ec2 describe-instances --instance-ids ${id} --region ${region}\``,
    );
  }
  return describeAwsError(e, { action: 'DescribeInstances', instanceId: id, region });
}

export async function waitRunning(client: EC2Client, id: string, timing: WaitTiming, region: string, signal?: AbortSignal): Promise<HostInstance> {
  try {
    await waitUntilInstanceRunning(
      { client, maxWaitTime: timing.maxWaitSeconds, minDelay: timing.minDelay, maxDelay: timing.maxDelay, ...(signal ? { abortSignal: signal } : {}) },
      { InstanceIds: [id] },
    );
  } catch (e) {
    throw await explainWaitFailure(client, id, 'running', e, region);
  }
  const now = await describeInstance(client, id, signal);
  if (!now) throw new StageError(`instance ${id} disappeared while starting`);
  return now;
}

export async function waitStopped(client: EC2Client, id: string, timing: WaitTiming, region: string, signal?: AbortSignal): Promise<void> {
  try {
    await waitUntilInstanceStopped(
      { client, maxWaitTime: timing.maxWaitSeconds, minDelay: timing.minDelay, maxDelay: timing.maxDelay, ...(signal ? { abortSignal: signal } : {}) },
      { InstanceIds: [id] },
    );
  } catch (e) {
    throw await explainWaitFailure(client, id, 'stopped', e, region);
  }
}

export interface ImageInfo {
  readonly imageId: string;
  readonly name?: string;
  readonly rootDeviceName?: string;
  readonly architecture?: string;
}

/** DescribeImages: checks that the AMI exists in this region and finds its root device. */
export async function imageInfo(client: EC2Client, imageId: string, signal?: AbortSignal): Promise<ImageInfo> {
  const res = await client.send(new DescribeImagesCommand({ ImageIds: [imageId] }), signal ? { abortSignal: signal } : {});
  const img = res.Images?.[0];
  if (!img) {
    const e = new Error(`The image id '[${imageId}]' does not exist`);
    e.name = 'InvalidAMIID.NotFound';
    throw e;
  }
  return {
    imageId,
    ...(img.Name ? { name: img.Name } : {}),
    ...(img.RootDeviceName ? { rootDeviceName: img.RootDeviceName } : {}),
    ...(img.Architecture ? { architecture: img.Architecture } : {}),
  };
}

export type EnsureAction = 'reused' | 'waited' | 'started' | 'launched';

export interface EnsureOptions {
  readonly pipeline: string;
  readonly stage: string;
  readonly cache: string;
  readonly region: string;
  readonly timing: WaitTiming;
  /** Called only when nothing can be reused: resolves the AMI, the security group... */
  prepareLaunch(): Promise<LaunchSpec>;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

export interface EnsureResult {
  readonly instance: HostInstance;
  readonly action: EnsureAction;
  /** Other live instances with the same tags (left alone; `pipe down` handles them). */
  readonly extras: readonly HostInstance[];
}

const PREFERENCE: Readonly<Record<string, number>> = { running: 0, pending: 1, stopping: 2, stopped: 3 };

/**
 * The idempotent heart of provision: reuse a running instance, wait for a pending one, start a
 * stopped (or stopping) one, and launch only when none carries this pipeline/stage/cache's tags.
 */
export async function ensureInstance(client: EC2Client, o: EnsureOptions): Promise<EnsureResult> {
  const found = await findInstances(client, { pipeline: o.pipeline, stage: o.stage, cache: o.cache }, o.signal);
  const ranked = [...found].sort((a, b) => (PREFERENCE[a.state] ?? 9) - (PREFERENCE[b.state] ?? 9));
  const best = ranked[0];
  const extras = ranked.slice(1);
  if (extras.length)
    o.log.warn(
      `${found.length} instances carry this stage's tags; using ${best?.id}, ignoring ${extras.map((e) => `${e.id} (${e.state})`).join(', ')} (\`pipe down\` stops them all)`,
    );

  if (!best) {
    const spec = await o.prepareLaunch();
    const launched = await launchInstance(client, spec, o.signal);
    o.log.info(`launched ${launched.id} (${spec.instanceType}${spec.spot ? ', spot' : ''}); waiting for it to run`);
    return { instance: await waitRunning(client, launched.id, o.timing, o.region, o.signal), action: 'launched', extras };
  }
  switch (best.state) {
    case 'running':
      o.log.info(`reusing running instance ${best.id} (${best.type})`);
      return { instance: best, action: 'reused', extras };
    case 'pending':
      o.log.info(`instance ${best.id} (${best.type}) is starting; waiting for it`);
      return { instance: await waitRunning(client, best.id, o.timing, o.region, o.signal), action: 'waited', extras };
    case 'stopping':
    case 'stopped': {
      if (best.state === 'stopping') {
        o.log.info(`instance ${best.id} is stopping; waiting to start it again`);
        await waitStopped(client, best.id, o.timing, o.region, o.signal);
      }
      o.log.info(`starting stopped instance ${best.id} (${best.type})`);
      try {
        await startInstances(client, [best.id], o.signal);
      } catch (e) {
        // Another run may have started it a moment ago: the waiter below settles that.
        if (errorCode(e) !== 'IncorrectInstanceState') throw e;
      }
      return { instance: await waitRunning(client, best.id, o.timing, o.region, o.signal), action: 'started', extras };
    }
    default:
      throw new StageError(`instance ${best.id} is in an unexpected state "${best.state}"`);
  }
}
