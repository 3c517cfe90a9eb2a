// The provision stage's params and the host.json record it writes: their own module so that
// the dispatcher (provision.ts) and each provider (provision-*.ts) share them without importing
// one another.

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

/** host.json, as the runner reads it: one type for the writer (this stage) and the readers. */
export type { HostFile as HostInfo } from '../runner/stage-api.js';
