// `pipe down FILE [--terminate]`: stop (or terminate) the EC2 instances this pipeline's
// provision stages made from this cache. They are found by their tags (pipe:pipeline and
// pipe:cache), not by local state, so it also finds instances of stages since renamed, and
// works from a fresh checkout of the same cache directory. Where to ask (region, endpoint)
// comes from the provision stages in the file and, from the run records, as runs had them: a
// run with `--set stages.host.with.provider=ec2` is found by a plain `pipe down FILE`. Stopped instances keep their disk
// (and cost its storage); the next `pipe run` starts them again. A pipeline's queued and running
// Slurm jobs (of this cache) are cancelled (scancel).
import type { Pipeline } from '../pipeline.js';
import type { PipelineOptions } from '../open.js';
import type { HostInstance, StateChange } from '../hosts/ec2/ec2.js';
import { EXIT, ExitError } from '../errors.js';
import { failure, pipelineLocations, recordedProvisionSpecs, type Write } from './hosts.js';
import { provisionerTypes } from '../hosts/provisioners.js';

export interface DownFlags extends PipelineOptions {
  terminate?: boolean;
  /** Override the provision stages' region / endpoint. */
  region?: string;
  endpoint?: string;
}

/** One region/endpoint to clean and the tags that identify this pipeline's instances there. */
export interface DownTarget {
  readonly pipeline: string;
  readonly cache: string;
  readonly region?: string;
  readonly endpoint?: string;
  /** The provision stages that point there (for messages). */
  readonly stages: readonly string[];
}

const stdout: Write = (t) => void process.stdout.write(t);

export async function downTargets(
  pipeline: Pick<Pipeline, 'name' | 'stages' | 'stageImpls'>,
  cacheRoot: string,
  flags: Pick<DownFlags, 'region' | 'endpoint'> = {},
): Promise<DownTarget[]> {
  const { cacheIdOf } = await import('../hosts/cache-id.js');
  const cache = cacheIdOf(cacheRoot);
  const locations = await pipelineLocations(pipeline, cacheRoot, {
    ...(flags.region ? { region: flags.region } : {}),
    ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
  });
  return locations.map((l) => ({
    pipeline: pipeline.name,
    cache,
    ...l,
  }));
}

function describe(i: HostInstance): string {
  const stage = i.tags['pipe:stage'];
  return `${i.id} (${i.type}${i.spot ? ', spot' : ''}${stage ? `, stage ${stage}` : ''}, was ${i.state})`;
}

/** Stop or terminate what the targets' tags find. Exit 1 when something could not be stopped. */
export async function downHosts(targets: readonly DownTarget[], options: { terminate?: boolean }, write: Write = stdout): Promise<number> {
  const ec2 = await import('../hosts/ec2/ec2.js');
  const { describeAwsError } = await import('../hosts/ec2/errors.js');
  let acted = 0;
  let code: number = EXIT.ok;
  for (const t of targets) {
    let region = t.region;
    let client: ReturnType<typeof ec2.createEc2Client> | undefined;
    let action = 'credentials';
    try {
      region = await ec2.resolveRegion(t.region);
      client = ec2.createEc2Client({ region, ...(t.endpoint ? { endpoint: t.endpoint } : {}) });
      await ec2.assertCredentials(client, region);
      action = 'DescribeInstances';
      const found = await ec2.findInstances(client, { pipeline: t.pipeline, cache: t.cache });
      if (found.length === 0) continue;
      let changed: StateChange[] = [];
      if (options.terminate) {
        action = 'TerminateInstances';
        changed = await ec2.terminateInstances(
          client,
          found.map((i) => i.id),
        );
      } else {
        const spot = found.filter((i) => i.spot && i.state !== 'stopped' && i.state !== 'stopping');
        const already = found.filter((i) => i.state === 'stopped' || i.state === 'stopping');
        const toStop = found.filter((i) => !spot.includes(i) && !already.includes(i));
        for (const i of already) write(`already ${i.state}: ${describe(i)}\n`);
        // EC2 refuses to stop a pending instance: let it come up first.
        for (const i of toStop.filter((x) => x.state === 'pending')) {
          action = 'DescribeInstances';
          write(`${i.id} is starting; waiting for it to run before stopping it\n`);
          await ec2.waitRunning(client, i.id, ec2.waitTiming(), region);
        }
        for (const i of spot) {
          write(`cannot stop ${describe(i)}: a one-time spot instance can only be terminated; run \`pipe down FILE --terminate\`\n`);
          code = EXIT.failed;
        }
        if (toStop.length) {
          action = 'StopInstances';
          changed = await ec2.stopInstances(
            client,
            toStop.map((i) => i.id),
          );
        }
      }
      const byId = new Map(found.map((i) => [i.id, i]));
      for (const c of changed) {
        const i = byId.get(c.id);
        write(`${options.terminate ? 'terminating' : 'stopping'} ${i ? describe(i) : c.id}: now ${c.current}\n`);
        acted++;
      }
    } catch (e) {
      throw failure(describeAwsError(e, { action, ...(region ? { region } : {}), ...(t.endpoint ? { endpoint: t.endpoint } : {}) }));
    } finally {
      client?.destroy();
    }
  }
  if (acted === 0 && code === EXIT.ok) write(`no running or stopped instances of ${targets[0]?.pipeline ?? 'this pipeline'} from this cache\n`);
  else if (acted > 0 && !options.terminate)
    write(`stopped instances keep their disk (billed as EBS storage); \`pipe run\` starts them again, \`pipe down --terminate\` removes them\n`);
  return code;
}

export async function downCommand(file: string, flags: DownFlags, write: Write = stdout): Promise<number> {
  const { openPipeline, cacheRoot } = await import('../open.js');
  const { pipeline } = await openPipeline(file, flags);
  const targets = await downTargets(pipeline, cacheRoot(pipeline, flags.cacheDir), flags);
  const slurm = await cancelSlurmJobs(pipeline, cacheRoot(pipeline, flags.cacheDir), write);
  if (targets.length === 0) {
    if (slurm === undefined)
      write(`${pipeline.name} has no \`provider: ec2\` or \`provider: slurm\` provision stage, and no run from this cache used one: nothing to stop\n`);
    return slurm ?? EXIT.ok;
  }
  return Math.max(slurm ?? EXIT.ok, await downHosts(targets, { ...(flags.terminate ? { terminate: true } : {}) }, write));
}

/** scancel this pipeline's queued and running Slurm jobs (of this cache); undefined: it has no Slurm cluster. */
async function cancelSlurmJobs(
  pipeline: Pick<Pipeline, 'name' | 'dir' | 'stages' | 'stageImpls'>,
  cacheRoot: string,
  write: Write,
): Promise<number | undefined> {
  const { pipelineJobs, cancelJobs } = await import('../hosts/slurm/queue.js');
  const found = await pipelineJobs(pipeline, cacheRoot, await recordedProvisionSpecs(pipeline.name, cacheRoot, provisionerTypes(pipeline))).catch(
    (e: Error) => {
      throw new ExitError(EXIT.failed, `pipe: ${e.message}`);
    },
  );
  if (found.clusters.length === 0) return undefined;
  let code: number = EXIT.ok;
  let cancelled = 0;
  for (const { cluster, jobs } of found.jobs) {
    if (jobs.length === 0) continue;
    const r = await cancelJobs(
      cluster,
      jobs.map((j) => j.id),
    );
    if (!r.ok) {
      write(`could not cancel Slurm jobs ${jobs.map((j) => j.id).join(', ')} on ${cluster.where}: ${r.err}\n`);
      code = EXIT.failed;
      continue;
    }
    for (const j of jobs) write(`cancelled Slurm job ${j.id} (stage ${j.stage}, was ${j.state.toLowerCase()}) on ${cluster.where}\n`);
    cancelled += jobs.length;
  }
  if (cancelled === 0 && code === EXIT.ok) write(`no queued or running Slurm jobs of ${pipeline.name} from this cache\n`);
  return code;
}
