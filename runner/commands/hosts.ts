// `pipe hosts [FILE]`: the EC2 instances pipe made (found by their `pipe:pipeline` tag, not by
// local state): id, pipeline, stage, state, type, uptime, public address. With FILE, only that
// pipeline's, in the regions its provision stages use; without, every pipe instance in the
// region of the AWS chain (or --region). With FILE, also the pipeline's Slurm jobs queued or
// running on the clusters its `provider: slurm` stages submit to (runner/hosts/slurm/queue.ts).
import type { HostInstance, TagFilter } from '../hosts/ec2/ec2.js';
import type { Pipeline } from '../pipeline.js';
import type { PipelineOptions } from '../open.js';
import { ExitError, EXIT } from '../errors.js';
import { provisionerTypes, provisioningSpecs, type ProvisionSpec } from '../hosts/provisioners.js';
import type { HostRow } from '../hosts/host-row.js';

export interface HostsFlags extends PipelineOptions {
  region?: string;
  endpoint?: string;
  /** Include terminated and shutting-down instances. */
  all?: boolean;
  json?: boolean;
}

export type { HostRow } from '../hosts/host-row.js';

export type Write = (text: string) => void;
const stdout: Write = (t) => void process.stdout.write(t);

/** One region + endpoint to ask, and for which pipeline (undefined: any pipe instance). */
export interface HostQuery {
  readonly region?: string;
  readonly endpoint?: string;
  readonly pipeline?: string;
  readonly cache?: string;
}

/** Where the ec2 ones of these host-provisioning stages live: distinct (region, endpoint) pairs; a region may be left to the AWS chain. */
export function provisionLocations(
  specs: readonly ProvisionSpec[],
  override: { region?: string; endpoint?: string } = {},
): { region?: string; endpoint?: string; stages: string[] }[] {
  const out = new Map<string, { region?: string; endpoint?: string; stages: string[] }>();
  for (const spec of specs) {
    if (spec.with.provider !== 'ec2') continue;
    const region = override.region ?? (typeof spec.with.region === 'string' ? spec.with.region : undefined);
    const endpoint = override.endpoint ?? (typeof spec.with.endpoint === 'string' ? spec.with.endpoint : undefined);
    const k = `${region ?? ''}\0${endpoint ?? ''}`;
    const entry = out.get(k) ?? { ...(region ? { region } : {}), ...(endpoint ? { endpoint } : {}), stages: [] };
    if (!entry.stages.includes(spec.id)) entry.stages.push(spec.id);
    out.set(k, entry);
  }
  return [...out.values()];
}

/**
 * The host-provisioning stages (of the types in `types`) as runs of this pipeline from this
 * cache had them, from their run records: what the file says, or
 * `--set stages.host.with.provider=ec2` (or a sweep) said at run time. So `pipe down FILE`
 * finds the instance a run started though the file says local.
 */
export async function recordedProvisionSpecs(pipelineName: string, cacheRoot: string, types: ReadonlySet<string>): Promise<ProvisionSpec[]> {
  const { readRecords } = await import('../history.js');
  const out: ProvisionSpec[] = [];
  for (const record of await readRecords(cacheRoot)) {
    const start = record.events.find((e) => e['type'] === 'run-start');
    if (!start || start['pipeline'] !== pipelineName || typeof start['stages'] !== 'object' || start['stages'] === null) continue;
    for (const [id, stage] of Object.entries(start['stages'] as Record<string, { uses?: unknown; with?: unknown }>)) {
      if (typeof stage?.uses === 'string' && types.has(stage.uses) && typeof stage.with === 'object' && stage.with !== null)
        out.push({ id, uses: stage.uses, with: stage.with as Record<string, unknown> });
    }
  }
  return out;
}

/** Where to look for a pipeline's instances: its host-provisioning stages now and as its runs had them. */
export async function pipelineLocations(
  pipeline: Pick<Pipeline, 'name' | 'stages' | 'stageImpls'>,
  cacheRoot: string,
  override: { region?: string; endpoint?: string } = {},
): Promise<{ region?: string; endpoint?: string; stages: string[] }[]> {
  const specs = [...provisioningSpecs(pipeline), ...(await recordedProvisionSpecs(pipeline.name, cacheRoot, provisionerTypes(pipeline)))];
  return provisionLocations(specs, override);
}

/** Instances matching each query, with the errors mapped to one clear line (ExitError 1). */
export async function queryHosts(
  queries: readonly HostQuery[],
  states?: readonly string[],
): Promise<{ region: string; endpoint?: string; instances: HostInstance[] }[]> {
  const ec2 = await import('../hosts/ec2/ec2.js');
  const { describeAwsError } = await import('../hosts/ec2/errors.js');
  const results: { region: string; endpoint?: string; instances: HostInstance[] }[] = [];
  for (const q of queries) {
    let region = q.region;
    const client = await (async () => {
      try {
        region = await ec2.resolveRegion(q.region);
        const c = ec2.createEc2Client({ region, ...(q.endpoint ? { endpoint: q.endpoint } : {}) });
        await ec2.assertCredentials(c, region);
        return c;
      } catch (e) {
        throw failure(describeAwsError(e, { action: 'credentials', ...(region ? { region } : {}) }));
      }
    })();
    try {
      const filter: TagFilter = {
        ...(q.pipeline !== undefined ? { pipeline: q.pipeline } : {}),
        ...(q.cache !== undefined ? { cache: q.cache } : {}),
        ...(states ? { states } : {}),
      };
      results.push({ region: region!, ...(q.endpoint ? { endpoint: q.endpoint } : {}), instances: await ec2.findInstances(client, filter) });
    } catch (e) {
      throw failure(describeAwsError(e, { action: 'DescribeInstances', ...(region ? { region } : {}) }));
    } finally {
      client.destroy();
    }
  }
  return results;
}

export function failure(e: { message: string; hint?: string | undefined }): ExitError {
  return new ExitError(EXIT.failed, `pipe: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`);
}

export function formatUptime(ms: number): string {
  const m = Math.floor(ms / 60_000);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

export function toRows(results: readonly { region: string; instances: readonly HostInstance[] }[], now = Date.now()): HostRow[] {
  const rows: HostRow[] = [];
  for (const r of results) {
    for (const i of r.instances) {
      const up = (i.state === 'running' || i.state === 'pending') && i.launchTime ? Math.max(0, now - i.launchTime.getTime()) : undefined;
      rows.push({
        id: i.id,
        pipeline: i.tags['pipe:pipeline'] ?? '',
        stage: i.tags['pipe:stage'] ?? '',
        state: i.state,
        type: i.type,
        region: r.region,
        spot: i.spot,
        ...(up !== undefined ? { uptimeMs: up } : {}),
        address: i.publicDns || i.publicIp || '',
        ...(i.launchTime ? { launchTime: i.launchTime.toISOString() } : {}),
      });
    }
  }
  return rows;
}

export function formatHosts(rows: readonly HostRow[]): string {
  const header = ['ID', 'PIPELINE', 'STAGE', 'STATE', 'TYPE', 'UPTIME', 'ADDRESS'];
  const table = rows.map((r) => [
    r.id,
    r.pipeline,
    r.stage,
    r.state,
    `${r.type}${r.spot ? ' (spot)' : ''}`,
    r.uptimeMs !== undefined ? formatUptime(r.uptimeMs) : '-',
    r.address || '-',
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...table.map((row) => row[c]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ');
  return [line(header), ...table.map(line)].join('\n') + '\n';
}

export async function hostsCommand(file: string | undefined, flags: HostsFlags, write: Write = stdout): Promise<number> {
  let queries: HostQuery[];
  let what: string;
  // A pipeline's Slurm jobs (queued or running) are listed as rows of their own.
  let jobRows: HostRow[] = [];
  if (file) {
    const { openPipeline, cacheRoot } = await import('../open.js');
    const { pipeline } = await openPipeline(file, flags);
    const locations = await pipelineLocations(pipeline, cacheRoot(pipeline, flags.cacheDir), {
      ...(flags.region ? { region: flags.region } : {}),
      ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
    });
    const slurm = await import('../hosts/slurm/queue.js');
    const found = await slurm
      .pipelineJobs(
        pipeline,
        cacheRoot(pipeline, flags.cacheDir),
        await recordedProvisionSpecs(pipeline.name, cacheRoot(pipeline, flags.cacheDir), provisionerTypes(pipeline)),
      )
      .catch((e: Error) => {
        throw new ExitError(EXIT.failed, `pipe: ${e.message}`);
      });
    jobRows = found.jobs.flatMap((j) => slurm.jobRows(j.cluster, pipeline.name, j.jobs));
    if (locations.length === 0 && found.clusters.length === 0) {
      write(`${pipeline.name} has no \`provider: ec2\` or \`provider: slurm\` provision stage: no hosts to list\n`);
      return EXIT.ok;
    }
    if (locations.length === 0) {
      if (flags.json) write(`${JSON.stringify(jobRows, null, 2)}\n`);
      else if (jobRows.length === 0) write(`no queued or running Slurm jobs of pipeline ${pipeline.name}\n`);
      else write(`${formatHosts(jobRows)}${jobRows.length} queued or running: \`pipe down FILE\` cancels them\n`);
      return EXIT.ok;
    }
    queries = locations.map((l) => ({ ...l, pipeline: pipeline.name }));
    what = `pipeline ${pipeline.name}`;
  } else {
    queries = [{ ...(flags.region ? { region: flags.region } : {}), ...(flags.endpoint ? { endpoint: flags.endpoint } : {}) }];
    what = 'pipe';
  }
  const states = flags.all ? ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] : undefined;
  const rows = [...toRows(await queryHosts(queries, states)), ...jobRows];
  if (flags.json) {
    write(`${JSON.stringify(rows, null, 2)}\n`);
    return EXIT.ok;
  }
  if (rows.length === 0) {
    write(`no ${what} instances${flags.all ? '' : ' (pending, running, stopping or stopped)'}\n`);
    return EXIT.ok;
  }
  write(formatHosts(rows));
  const running = rows.filter((r) => r.state === 'running' || r.state === 'pending').length;
  if (running) write(`${running} running: \`pipe down FILE\` stops them (\`--terminate\` removes them)\n`);
  return EXIT.ok;
}
