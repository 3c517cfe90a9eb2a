// What a Slurm job asks for (provision's `partition`, `gres`, `cpus`, `mem`, `time`, `account`,
// `qos`, `sbatch_args`), as host.json records it, and the sbatch command line made from it.
// A job carries pipe's key in its name and comment, so a later run (or `pipe hosts`/`pipe down`)
// finds it in the queue without any local state.
import { shq } from '../ssh.js';

export interface SlurmRequest {
  readonly partition?: string;
  readonly gres?: string;
  readonly cpus?: number;
  readonly mem?: string;
  /** Minutes, or Slurm's [D-]HH:MM:SS. */
  readonly time?: string | number;
  readonly account?: string;
  readonly qos?: string;
  readonly sbatchArgs?: readonly string[];
}

/** host.json's `slurm`: the cluster (not a node) and what each job asks of it. */
export interface SlurmCluster extends SlurmRequest {
  /** ClusterName of the cluster's slurm.conf. */
  readonly cluster: string;
  /** The submit host is this machine (sbatch on the PATH), not a login node over ssh. */
  readonly local: boolean;
  /** When the request asks for a GPU: what a compute node of the partition offers (gpu-probe.ts). */
  readonly gpuProbe?: ComputeGpu;
}

/** `pipe-<first 16 hex of the key>`: short enough for squeue's columns, unique enough per cache. */
export function jobName(key: string): string {
  return `pipe-${key.slice(0, 16)}`;
}

/** The comment that ties a job to a pipeline, stage, cache and key (no spaces: squeue prints it as one field). */
export function jobComment(o: { pipeline: string; stage: string; cache: string; key: string }): string {
  return ['pipe', o.pipeline, o.stage, o.cache, o.key].map((s) => s.replace(/[\s|:]/g, '_')).join(':');
}

export interface JobTag {
  readonly pipeline: string;
  readonly stage: string;
  readonly cache: string;
  readonly key: string;
}

export function parseComment(comment: string): JobTag | undefined {
  const parts = comment.split(':');
  if (parts.length !== 5 || parts[0] !== 'pipe') return undefined;
  return { pipeline: parts[1]!, stage: parts[2]!, cache: parts[3]!, key: parts[4]! };
}

/** The sbatch command (shell text) that submits `script`, its output appended to `logFile`. */
export function sbatchCommand(r: SlurmRequest, o: { name: string; comment: string; logFile: string; chdir: string; script: string }): string {
  const args = [
    '--parsable',
    `--job-name=${o.name}`,
    `--comment=${o.comment}`,
    `--output=${o.logFile}`,
    // A requeued job writes on after its first attempt instead of truncating what was streamed.
    '--open-mode=append',
    `--chdir=${o.chdir}`,
    ...(r.partition ? [`--partition=${r.partition}`] : []),
    ...(r.gres ? [`--gres=${r.gres}`] : []),
    ...(r.cpus ? [`--cpus-per-task=${r.cpus}`] : []),
    ...(r.mem ? [`--mem=${r.mem}`] : []),
    ...(r.time ? [`--time=${r.time}`] : []),
    ...(r.account ? [`--account=${r.account}`] : []),
    ...(r.qos ? [`--qos=${r.qos}`] : []),
    ...(r.sbatchArgs ?? []),
  ];
  return ['sbatch', ...args, o.script].map(shq).join(' ');
}

/** What provision's probe job (gpu-probe.ts) learned of the GPU a compute node gives a job. */
export interface ComputeGpu {
  /** GPU names from `nvidia-smi -L` on the node (as many as the job was given). */
  readonly gpus: readonly string[];
  /** Folders of libcudart.so.12 and libcudnn.so.9 there, when found. */
  readonly cuda12?: string;
  readonly cudnn?: string;
  /** The node the probe ran on, and its job id. */
  readonly node?: string;
  readonly jobId?: string;
  readonly probedAt: string;
  /** The probe job could not run (what Slurm said): nothing is known of the nodes' GPUs. */
  readonly failed?: string;
}
