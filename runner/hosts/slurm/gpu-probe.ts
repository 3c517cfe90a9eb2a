// Which GPUs a Slurm job gets, asked of a compute node: the login node that pipe installs from
// often has no GPU (or another one), so its `nvidia-smi` says nothing about the nodes of a GPU
// partition. When the provision stage asks for a GPU, a short probe job (srun, with the request's
// partition, gres, account and qos) runs the ssh install's GPU probe (`nvidia-smi -L`, the CUDA 12
// and cuDNN 9 library folders) on such a node. The answer is kept in the local cache per
// cluster, partition and GPU request: a probe job waits in the same queue as the stages' jobs,
// so it is not paid again on every run.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { StageError, type Logger } from '../../types.js';
import { hashOf } from '../../canonical.js';
import { writeAtomic } from '../../fs-util.js';
import { gpuProbeLines, parseProbe } from '../host-probe.js';
import { shq, type SshTarget } from '../ssh.js';
import { captureText } from './shell.js';
import type { ComputeGpu, SlurmRequest } from './request.js';

/** How long the probe job may wait for a node before pipe gives up on it (srun --immediate). */
export const PROBE_WAIT_S = 120;
export const PROBE_JOB_NAME = 'pipe-gpu-probe';

/** What a compute node of the partition offers a job that asks for a GPU. */
export type { ComputeGpu } from './request.js';

/** sbatch_args that choose which nodes a job gets (the probe must land on the same kind). */
const PLACEMENT_ARGS = /^(--constraint|-C|--gpus|--gpus-per-node|--gpus-per-task|-G|--gres|--reservation|--nodelist|-w|--exclude|-x|--clusters|-M)(=|$)/;

/** How the request asks for a GPU (`gres gpu:1`, `--gpus=1`), or undefined when it asks for none. */
export function asksGpu(r: SlurmRequest): string | undefined {
  if (r.gres && /(^|,)gpu(:|,|$)/.test(r.gres)) return `gres ${r.gres}`;
  const arg = (r.sbatchArgs ?? []).find((a) => /^(--gpus|--gpus-per-node|--gpus-per-task|-G)(=|$)/.test(a) || /^--gres=(.*,)?gpu(:|,|$)/.test(a));
  return arg;
}

/** srun's options for the probe job: the request's placement, a short time limit, one task. */
export function probeOptions(r: SlurmRequest): string[] {
  return [
    `--job-name=${PROBE_JOB_NAME}`,
    `--immediate=${PROBE_WAIT_S}`,
    '--time=2',
    '--ntasks=1',
    ...(r.partition ? [`--partition=${r.partition}`] : []),
    ...(r.gres ? [`--gres=${r.gres}`] : []),
    ...(r.account ? [`--account=${r.account}`] : []),
    ...(r.qos ? [`--qos=${r.qos}`] : []),
    ...(r.sbatchArgs ?? []).filter((a) => PLACEMENT_ARGS.test(a)),
  ];
}

export function probeCommand(r: SlurmRequest): string {
  const script = ['echo "job=$SLURM_JOB_ID"', 'echo "node=$(hostname -s)"', ...gpuProbeLines(), 'true'].join('\n');
  return ['srun', ...probeOptions(r), '/bin/sh', '-c', script].map(shq).join(' ');
}

/** Runs the probe job and reads its answer; a refused request is the stage's error. */
export async function runProbeJob(t: SshTarget, cluster: string, r: SlurmRequest, signal?: AbortSignal): Promise<ComputeGpu> {
  const res = await captureText(t, probeCommand(r), signal);
  if (signal?.aborted) throw new StageError('interrupted');
  if (res.exitCode === 255 && !t.local && !res.out)
    throw new StageError(`cannot reach the Slurm login node ${t.address} over ssh for the GPU probe job: ${res.err.split('\n').pop() || 'exit 255'}`);
  const lines = res.out.split('\n');
  const get = (k: string): string | undefined =>
    lines
      .find((l) => l.startsWith(`${k}=`))
      ?.slice(k.length + 1)
      .trim() || undefined;
  const probedAt = new Date().toISOString();
  const jobId = get('job');
  if (res.ok && jobId) {
    const p = parseProbe(lines);
    const node = get('node');
    return { gpus: p.gpus, ...(p.cuda12 ? { cuda12: p.cuda12 } : {}), ...(p.cudnn ? { cudnn: p.cudnn } : {}), ...(node ? { node } : {}), jobId, probedAt };
  }
  const said = res.err
    .split('\n')
    .map((l) => l.replace(/^srun: (error: )?/, '').trim())
    .filter(Boolean);
  const queuedId = said.map((l) => /^job (\d+) queued and waiting for resources/.exec(l)?.[1]).find(Boolean);
  const refused = said.find((l) => l.startsWith('Unable to allocate resources: '))?.slice('Unable to allocate resources: '.length);
  if (refused && !queuedId) {
    throw new StageError(
      `Slurm cluster ${cluster} refused the GPU probe job (${probeOptions(r).slice(2).join(' ')}): ${refused}`,
      "the stages' jobs ask for the same: check the provision stage's partition, gres, account and qos against `sinfo` and your account",
    );
  }
  const why = queuedId
    ? `job ${queuedId} did not start within ${PROBE_WAIT_S} s${said[0] && !said[0].startsWith('job ') ? `: ${said[0]}` : ''}`
    : (said.pop() ?? `srun exited with ${res.exitCode}`);
  return { gpus: [], ...(jobId ? { jobId } : {}), probedAt, failed: why };
}

export interface ComputeGpuOptions {
  readonly target: SshTarget;
  /** The submit host, as the messages say it ('this machine', user@login). */
  readonly where: string;
  readonly cluster: string;
  readonly request: SlurmRequest;
  /** Where the answers are kept (in the local cache). */
  readonly cacheDir: string;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

/** The file that keeps the answer for this cluster, partition and GPU request. */
export function probeFile(o: Pick<ComputeGpuOptions, 'target' | 'cluster' | 'request' | 'cacheDir'>): string {
  const r = o.request;
  const id = hashOf([
    o.target.local ? 'local' : `${o.target.user}@${o.target.address}:${o.target.port}`,
    o.cluster,
    r.partition ?? '',
    probeOptions(r).slice(4),
  ]);
  return path.join(o.cacheDir, `gpu-probe-${id.slice(0, 16)}.json`);
}

export function describeComputeGpu(c: ComputeGpu): string {
  if (c.failed) return `unknown (the probe job could not run: ${c.failed})`;
  const gpus = c.gpus.length ? `${c.gpus.length}x ${[...new Set(c.gpus)].join(', ')}` : 'no GPU (nvidia-smi lists none)';
  const libs = c.gpus.length ? `; CUDA 12 runtime: ${c.cuda12 ?? 'not found'}, cuDNN 9: ${c.cudnn ?? 'not found'}` : '';
  return `${gpus} on node ${c.node ?? '?'}${libs}`;
}

/**
 * What a job of this request gets, when it asks for a GPU: the cached answer, or a probe job's.
 * undefined when the request asks for no GPU (no probe job then). A probe that could not run is
 * said and not cached, so the next run asks again.
 */
export async function computeGpu(o: ComputeGpuOptions): Promise<ComputeGpu | undefined> {
  const asked = asksGpu(o.request);
  if (!asked) return undefined;
  const file = probeFile(o);
  const part = o.request.partition ? `partition ${o.request.partition}` : 'the default partition';
  const cached = await readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as ComputeGpu,
    () => undefined,
  );
  if (cached && Array.isArray(cached.gpus)) {
    o.log.info(`GPU probe of ${part} (${asked}), cached from ${cached.probedAt}: ${describeComputeGpu(cached)} (delete ${file} to probe again)`);
    return cached;
  }
  o.log.info(`asking a compute node of ${part} which GPU a job with ${asked} gets (probe job ${PROBE_JOB_NAME}, srun via ${o.where})`);
  const found = await runProbeJob(o.target, o.cluster, o.request, o.signal);
  if (found.failed) {
    o.log.warn(
      `GPU probe of ${part} (${asked}): ${describeComputeGpu(found)}; pipe installs the CUDA build for the GPU the jobs ask for, and asks again next run`,
    );
    return found;
  }
  o.log.info(`GPU probe of ${part} (${asked}), Slurm job ${found.jobId}: ${describeComputeGpu(found)}`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeAtomic(file, `${JSON.stringify(found, null, 2)}\n`);
  return found;
}
