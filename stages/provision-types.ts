// The provision stage's params and the host.json record it writes: their own module so that
// the dispatcher (provision.ts) and each provider (provision-*.ts) share them without importing
// one another.
import type { SlurmCluster } from '../runner/stage-api.js';

export interface ProvisionParams {
  provider: 'local' | 'ec2' | 'ssh' | 'slurm';
  address?: string;
  remote_dir?: string;
  pipe_path?: string;
  gpu: 'auto' | 'required' | 'cpu';
  node_version?: string;
  node_dist_url?: string;
  instance_type: string;
  region?: string;
  ami?: string;
  ami_type: string;
  key_name?: string;
  ssh_user: string;
  ssh_port: number;
  ssh_key?: string;
  security_group: string;
  ssh_cidr?: string;
  subnet?: string;
  spot: boolean;
  volume_gb: number;
  max_hours: number;
  tags: Record<string, string>;
  endpoint?: string;
  ssh_wait_seconds: number;
  partition?: string;
  gres?: string;
  cpus?: number;
  mem?: string;
  time?: string | number;
  account?: string;
  qos?: string;
  sbatch_args?: string[];
}

/** host.json: what the runner needs to place a stage, and what a reader needs to judge timings. Never credentials. */
export interface HostInfo {
  readonly provider: 'local' | 'ec2' | 'ssh' | 'slurm';
  /** `provider: slurm`: the cluster and what each job asks of it (runner/hosts/slurm/request.ts). */
  readonly slurm?: SlurmCluster;
  /** Where pipe keeps its files on the host (relative to the remote home). */
  readonly workspace?: string;
  /** An existing pipe installation on the host (else pipe is synced and installed there once). */
  readonly pipePath?: string;
  /** `gpu: required`: a stage that would compute on the host's CPU fails instead of warning. */
  readonly gpu?: 'auto' | 'required' | 'cpu';
  /** The Node pipe installs on a host without one. */
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
