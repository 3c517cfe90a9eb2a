// host.json, the file a host artifact holds (written by the provision stage, read by the runner
// to place a `runs_on` stage and by the report to judge timings): its one type, its name and
// its readers. Never credentials: a key is named by its path, never its content.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { GpuMode } from './prepare.js';
import type { SlurmCluster } from './slurm/request.js';

export const HOST_FILE = 'host.json';

/** host.json: what the runner needs to place a stage, and what a reader needs to judge timings. */
export interface HostFile {
  readonly provider: 'local' | 'ec2' | 'ssh' | 'slurm';
  /** `provider: slurm`: the cluster and what each job asks of it; the stage runs as a batch job. */
  readonly slurm?: SlurmCluster;
  /** Where pipe keeps its files on the host (relative to the remote home). */
  readonly workspace?: string;
  /** An existing pipe installation on the host; else pipe is synced and installed there once. */
  readonly pipePath?: string;
  /** 'required': a stage that would compute on the CPU of this host fails instead of warning. */
  readonly gpu?: GpuMode;
  /** The Node pipe installs on a host without one (version, and a mirror of nodejs.org/dist). */
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

/** The host.json of a host artifact's folder; throws when it is missing or does not parse. */
export async function readHostFile(artifactDir: string): Promise<HostFile> {
  return JSON.parse(await readFile(path.join(artifactDir, HOST_FILE), 'utf8')) as HostFile;
}

/** Where a `runs_on` stage goes: the host.json of its host artifact, or undefined when it has none. */
export async function readPlacement(hostArtifactDir: string): Promise<HostFile | undefined> {
  try {
    return await readHostFile(hostArtifactDir);
  } catch {
    return undefined;
  }
}

/** A host that is not this machine: its stages run there. */
export function isRemote(p: HostFile | undefined): p is HostFile {
  return p !== undefined && p.provider !== 'local';
}
