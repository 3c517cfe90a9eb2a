// One row of `pipe hosts` (an EC2 instance, or a Slurm job of runner/hosts/slurm/queue.ts): in a
// module of its own so that the command and the queue reader do not import each other.
export interface HostRow {
  readonly id: string;
  readonly pipeline: string;
  readonly stage: string;
  readonly state: string;
  readonly type: string;
  readonly region: string;
  readonly spot: boolean;
  /** Milliseconds since the last start, for pending/running instances. */
  readonly uptimeMs?: number;
  readonly address: string;
  readonly launchTime?: string;
}
