// Running one stage on a remote host (`runs_on:` a provision stage whose host is not this
// machine). The runner keeps owning the cache: it syncs the project and the input artifacts
// (by content hash, so nothing is sent twice), runs `pipe exec` there, streams its log back,
// and brings the output into a local temp dir that it commits like any artifact.
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Artifact, Logger, Progress, StageResult } from '../types.js';
import { StageError } from '../types.js';
import { decodeLine, type Job } from './job.js';
import { rsyncDown, rsyncUp, shq, sshRun, type SshTarget } from './ssh.js';
import { hashOf } from '../canonical.js';
import { cacheIdOf, originIdOf } from './cache-id.js';
import { sparseOf } from '../sparse.js';
import { prepareHost, type HostRuntime, type JobNodes } from './prepare.js';
import { asksGpu } from './slurm/gpu-probe.js';
import { secretsLine } from '../secrets.js';
import type { HostFile } from './host-file.js';
import type { SlurmCluster } from './slurm/request.js';

export interface RemoteRunOptions {
  readonly placement: HostFile;
  readonly knownHosts: string;
  readonly pipelineName: string;
  readonly pipelineDir: string;
  readonly stageId: string;
  readonly uses: string;
  readonly params: Record<string, unknown>;
  readonly inputs: Readonly<Record<string, Artifact>>;
  readonly key: string;
  readonly runId: string;
  /** Local directory the output lands in (the runner's temp data dir). */
  readonly outDir: string;
  readonly log: Logger;
  progress(label: string, total?: number, resumed?: number): Progress;
  readonly signal: AbortSignal;
  /** Secret values for the stage's environment there (runner/secrets.ts): sent on stdin only. */
  readonly secrets?: Readonly<Record<string, string>>;
}

export async function runOnHost(o: RemoteRunOptions): Promise<StageResult> {
  const p = o.placement;
  const where = p.instanceId ? `${p.address} (${p.instanceId})` : p.address;
  const target: SshTarget = {
    address: p.address,
    user: p.sshUser ?? 'ubuntu',
    port: p.sshPort ?? 22,
    ...(p.sshKey ? { key: p.sshKey } : {}),
    knownHosts: o.knownHosts,
    ...(p.slurm?.local ? { local: true } : {}),
  };
  const lost = (doing: string): StageError =>
    new StageError(`connection to host ${where} lost ${doing}`, 're-run: what already reached the host is not sent again');

  let home = '';
  const hello = await sshRun(target, 'echo "$HOME"', { signal: o.signal, onLine: (l) => (home ||= l.trim()) });
  if (hello.exitCode !== 0 || !home) {
    throw new StageError(`cannot reach host ${where} over ssh: ${hello.stderr.trim().split('\n').pop() || `exit ${hello.exitCode}`}`);
  }
  const root = path.posix.isAbsolute(p.workspace ?? '') ? p.workspace! : path.posix.join(home, p.workspace ?? '.pipe-remote');
  const sync = async (doing: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      if (o.signal.aborted) throw new StageError('interrupted');
      const msg = (e as Error).message;
      throw /lost/.test(msg) ? lost(doing) : new StageError(`${doing} failed: ${msg}`);
    }
  };

  // Node and pipe itself: what the host has, or installed there once (prepare.ts).
  const host = await prepareHost({
    target,
    where,
    root,
    log: o.log,
    signal: o.signal,
    sync,
    lost,
    ...(p.pipePath ? { pipePath: p.pipePath } : {}),
    ...(p.nodeVersion ? { nodeVersion: p.nodeVersion } : {}),
    ...(p.nodeDistUrl ? { nodeDistUrl: p.nodeDistUrl } : {}),
    ...(p.gpu ? { gpu: p.gpu } : {}),
    ...(p.slurm ? { jobNodes: jobNodesOf(p.slurm) } : {}),
  });

  // The project (relative paths in params) and the inputs, each input once per content hash. The
  // project's folder is this checkout's own (its path on this machine): another clone of the
  // pipeline, same name but other files, syncs into its own folder, and a stage never reads them.
  const projectDir = path.posix.join(root, 'projects', `${o.pipelineName}-${originIdOf(o.pipelineDir)}`);
  // Runs at once (a sweep, two runs of one checkout) sync into the same folders: one rsync at a
  // time per folder, or one's --delete removes the other's temp files. The runs of one checkout
  // send the same files, so a sync under a running stage rewrites nothing it reads.
  const lock = (dir: string): { lock: string } => ({ lock: `/tmp/pipe-sync-${hashOf(dir).slice(0, 16)}.lock` });
  await sync('syncing the project', () =>
    rsyncUp(target, o.pipelineDir, projectDir, { signal: o.signal, delete: true, exclude: ['.pipe', 'node_modules', '.git'], ...lock(projectDir) }),
  );
  const remoteInputs: Record<string, Artifact> = {};
  for (const [port, a] of Object.entries(o.inputs)) {
    // A partial pull (sparse entry) holds only some files: never the host's whole copy of its content.
    const sparse = sparseOf(a);
    const dir = path.posix.join(root, 'store', sparse ? `${a.contentHash}-partial-${hashOf(sparse.present).slice(0, 12)}` : a.contentHash);
    const have = await sshRun(target, `test -f ${shq(`${dir}.complete`)}`, { signal: o.signal });
    if (have.exitCode === 255) throw lost('checking inputs');
    if (have.exitCode !== 0) {
      o.log.info(`sending input ${port} (${a.contentHash.slice(0, 12)})`);
      await sync(`sending input ${port}`, () => rsyncUp(target, a.dir, dir, { signal: o.signal, delete: true, ...lock(dir) }));
      await sshRun(target, `touch ${shq(`${dir}.complete`)}`, { signal: o.signal });
    }
    remoteInputs[port] = { ...a, dir };
  }

  // The job, in a folder of this cache's own (key and cache origin): two runs of one key from two
  // caches (two clones, two people on one account) never write one job.json or out/, nor remove
  // the folder under the other. Runs of one cache never compute one key at once (the cache's key
  // lock), and a re-run after a lost connection comes from the same cache: it finds the job done
  // there (done.json) and only fetches it. (A lock on the host instead would hold the second run
  // through the first's whole job, which on Slurm has no ssh session to hold it, and then leave it
  // nothing to fetch once the first removed the folder.)
  const cacheRoot = path.dirname(path.dirname(o.knownHosts)); // <cache root>/ssh/known_hosts
  const jobDir = path.posix.join(root, 'jobs', `${o.key}-${originIdOf(cacheRoot)}`);
  const job: Job = {
    uses: o.uses,
    stageId: o.stageId,
    pipelineName: o.pipelineName,
    pipelineDir: projectDir,
    params: o.params,
    inputs: remoteInputs,
    outDir: path.posix.join(jobDir, 'out'),
    workDir: path.posix.join(jobDir, 'work'),
    cacheRoot: path.posix.join(root, 'cache'),
    runId: o.runId,
    ...(o.secrets && Object.keys(o.secrets).length ? { secrets: Object.keys(o.secrets) } : {}),
  };
  let result: StageResult | undefined;
  const done = await sshRun(target, `cat ${shq(path.posix.join(jobDir, 'done.json'))} 2>/dev/null`, {
    signal: o.signal,
    onLine: (l) => (result ??= tryJson(l)),
  });
  if (done.exitCode === 255) throw lost('checking for earlier work');
  let slurmJob: import('./slurm/job.js').SlurmJobFacts | undefined;
  if (result) o.log.info('the host already finished this job: fetching its output');
  else {
    const sendJob = async (): Promise<void> => {
      const local = await mkdtemp(path.join(os.tmpdir(), 'pipe-job-'));
      try {
        await writeFile(path.join(local, 'job.json'), JSON.stringify(job));
        await sync('sending the job', () => rsyncUp(target, local, jobDir, { signal: o.signal }));
      } finally {
        await rm(local, { recursive: true, force: true });
      }
    };
    const execute = `node ${shq(host.bin)} exec ${shq(path.posix.join(jobDir, 'job.json'))}`;
    let failure: string | undefined;
    const bars = new Map<number, Progress>();
    const onLine = (text: string): void => {
      const line = decodeLine(text);
      if (!line) return o.log.info(text);
      switch (line.t) {
        case 'log':
          return o.log[line.level](line.msg);
        case 'progress': {
          let bar = bars.get(line.id);
          if (!bar) bars.set(line.id, (bar = o.progress(line.label, line.total, line.resumed)));
          if (line.total !== undefined) bar.setTotal(line.total);
          if (line.end) bar.done(line.status);
          else bar.update(line.done, line.status);
          return;
        }
        case 'result':
          result = line.result;
          return;
        case 'error':
          failure = line.message;
          return;
        default: {
          const never: never = line;
          return never;
        }
      }
    };
    if (p.slurm && job.secrets) {
      // A batch job has no session to read them from, and sbatch keeps a job's environment in the
      // controller's state files: refused rather than written to the cluster's disks.
      throw new StageError(
        `this stage is given secrets (${job.secrets.join(', ')}), which pipe does not pass to Slurm jobs: the scheduler would store them in its state files`,
        'run this stage on an ssh host or locally, or give the job its credential through the cluster (e.g. a file readable only by you)',
      );
    }
    if (p.slurm) {
      // The cluster's scheduler runs it: submitted (or found queued by its key) and followed.
      const { runSlurmJob } = await import('./slurm/job.js');
      slurmJob = await runSlurmJob({
        target,
        cluster: p.slurm,
        key: o.key,
        pipelineName: o.pipelineName,
        stageId: o.stageId,
        cacheId: cacheIdOf(cacheRoot),
        jobDir,
        projectDir,
        command: `${host.env}exec ${execute}`,
        sendJob,
        onLine,
        onAttempt: () => {
          // A requeued job starts over: the error or result of its killed attempt is not its own.
          failure = undefined;
          result = undefined;
        },
        failure: () => failure,
        log: o.log,
        signal: o.signal,
        lost,
      });
      if (!result)
        throw new StageError(
          `Slurm job ${slurmJob.jobId} completed but its log has no result from pipe exec`,
          `see ${path.posix.join(jobDir, 'job.log')} on ${where}`,
        );
    } else {
      await sendJob();
      o.log.info(`running on ${where}`);
      const run = await sshRun(target, `cd ${shq(projectDir)} && ${host.env}${execute}`, {
        signal: o.signal,
        onLine,
        ...(job.secrets ? { input: secretsLine(o.secrets!) } : {}),
      });
      if (o.signal.aborted) throw new StageError('interrupted');
      if (failure) throw new StageError(`${failure} (on ${where})`);
      if (run.exitCode === 255 || !result) throw lost('while the stage ran');
    }
  }
  await sync('fetching the output', () => rsyncDown(target, job.outDir, o.outDir, { signal: o.signal }));
  await sshRun(target, `rm -rf ${shq(jobDir)}`, { signal: o.signal });
  const placed = withDevice(result ?? {}, where, host, o.log);
  return slurmJob ? { ...placed, meta: { ...placed.meta, slurm: slurmJob } } : placed;
}

/**
 * meta.json says where the stage ran and on which device (as its engines reported it); a stage
 * that computed on the CPU of a host with a GPU carries the reason as a warning, which the run
 * summary shows.
 */
export function withDevice(result: StageResult, where: string, host: HostRuntime, log: Logger): StageResult {
  const device = typeof result.meta?.['device'] === 'string' ? (result.meta['device'] as string) : undefined;
  if (device) log.info(`computed on ${device}`);
  const onGpu = device !== undefined && /cuda|tensorflow-gpu/.test(device);
  const gpuList = host.gpus.length ? `${host.gpus.length}x ${[...new Set(host.gpus)].join(', ')}` : 'no GPU';
  const place = host.gpuWhere.replace(/^host /, '');
  // A Slurm job that asked for a GPU and whose engines said they ran on the CPU, for a reason
  // pipe could not foresee, is said too: the GPU was paid for in the queue.
  const warning =
    host.cpuReason && !onGpu
      ? `ran on the CPU of ${place} (${gpuList}): ${host.cpuReason}`
      : host.gpuAsked && device && !onGpu
        ? `computed on ${device} on ${place} although its Slurm job asked for ${host.gpuAsked}`
        : undefined;
  if (warning && !host.cpuReason) log.warn(warning);
  const meta = { ...result.meta, host: { address: where, gpus: host.gpus }, ...(warning ? { warnings: [warning] } : {}) };
  return { ...result, meta };
}

/** What provision's probe job learned of the cluster's compute nodes, as prepare.ts takes it. */
function jobNodesOf(c: SlurmCluster): JobNodes {
  const g = c.gpuProbe;
  const asked = g ? (asksGpu(c) ?? 'a GPU') : undefined;
  return {
    where: `${c.partition ? `partition ${c.partition}` : 'the default partition'} of Slurm cluster ${c.cluster}`,
    gpus: g?.gpus ?? [],
    ...(asked ? { asked } : {}),
    ...(g?.cuda12 ? { cuda12: g.cuda12 } : {}),
    ...(g?.cudnn ? { cudnn: g.cudnn } : {}),
    ...(g?.failed ? { failed: g.failed } : {}),
  };
}

function tryJson(text: string): StageResult | undefined {
  try {
    return JSON.parse(text) as StageResult;
  } catch {
    return undefined;
  }
}
