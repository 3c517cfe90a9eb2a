// A Slurm job's state as `scontrol show job -o` prints it (one line of Key=Value fields), and
// what pipe says about each state. Only the fields pipe reads are parsed; values with spaces
// (Command=, WorkDir=) are never needed.

export interface JobState {
  readonly id: string;
  /** PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... */
  readonly state: string;
  /** Why it waits or ended: Resources, Priority, BeginTime, NonZeroExitCode, None, ... */
  readonly reason: string;
  readonly restarts: number;
  readonly node?: string;
  readonly submitTime?: string;
  readonly startTime?: string;
  readonly endTime?: string;
  readonly timeLimit?: string;
  /** `exit:signal` of the batch script. */
  readonly exitCode?: string;
  readonly partition?: string;
}

const field = (line: string, name: string): string | undefined => {
  const m = new RegExp(`(?:^|\\s)${name}=(\\S*)`).exec(line);
  return m ? m[1] : undefined;
};

/** undefined when the controller no longer knows the job ("Invalid job id specified"). */
export function parseJobState(text: string): JobState | undefined {
  const line = text.split('\n').find((l) => /(?:^|\s)JobId=\d/.test(l));
  if (!line) return undefined;
  const known = (v: string | undefined): string | undefined => (v && v !== 'Unknown' && v !== '(null)' && v !== 'None' ? v : undefined);
  const node = known(field(line, 'NodeList'));
  const start = known(field(line, 'StartTime'));
  const end = known(field(line, 'EndTime'));
  const submit = known(field(line, 'SubmitTime'));
  const limit = known(field(line, 'TimeLimit'));
  const exit = field(line, 'ExitCode');
  const partition = known(field(line, 'Partition'));
  return {
    id: field(line, 'JobId') ?? '',
    state: field(line, 'JobState') ?? 'UNKNOWN',
    reason: field(line, 'Reason') ?? 'None',
    restarts: Number(field(line, 'Restarts') ?? 0) || 0,
    ...(node ? { node } : {}),
    ...(submit ? { submitTime: submit } : {}),
    ...(start ? { startTime: start } : {}),
    ...(end ? { endTime: end } : {}),
    ...(limit ? { timeLimit: limit } : {}),
    ...(exit ? { exitCode: exit } : {}),
    ...(partition ? { partition } : {}),
  };
}

/** States after which the job will not run again (a requeue puts it back to PENDING first). */
const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED', 'SPECIAL_EXIT']);

export function isFinal(state: string): boolean {
  return FINAL.has(state);
}

/** What a pending reason means to a user: "waiting for resources (Resources)". */
export function pendingWhy(reason: string): string {
  const plain: Record<string, string> = {
    Resources: 'waiting for free resources',
    Priority: 'other jobs come first',
    BeginTime: 'held until its begin time (a requeued job waits a while before it starts again)',
    Dependency: 'waiting for a job it depends on',
    JobHeldUser: 'held by its user (scontrol release)',
    JobHeldAdmin: 'held by an administrator',
    QOSMaxJobsPerUserLimit: 'the QOS limits how many jobs you may run',
    AssocGrpGRES: 'the account has used its GPU share',
    ReqNodeNotAvail: 'the nodes it asks for are not available',
    PartitionDown: 'its partition is down',
    PartitionNodeLimit: 'it asks for more than the partition allows',
    None: 'about to start',
  };
  return `${plain[reason] ?? 'pending'} (${reason})`;
}

/**
 * The stage's error for a job that ended without a result; undefined for COMPLETED. `attempt` is
 * the last attempt whose script wrote to the log (-1 none): a requeued job that failed before its
 * new attempt's script began failed in Slurm, not in the stage (e.g. slurmd refusing a relaunch
 * within the second its first attempt was killed: "Job credential revoked").
 */
export function endedWhy(s: JobState, time: string | undefined, attempt = s.restarts): string | undefined {
  const where = `Slurm job ${s.id}${s.node ? ` on ${s.node}` : ''}`;
  if (s.state === 'FAILED' && attempt < s.restarts)
    return `${where} failed before its script started (attempt ${s.restarts + 1}${s.restarts ? `, after ${s.restarts} requeue${s.restarts > 1 ? 's' : ''}` : ''}; exit code ${s.exitCode ?? '?'}): see slurmd's log on ${s.node ?? 'its node'}`;
  switch (s.state) {
    case 'COMPLETED':
      return undefined;
    case 'TIMEOUT':
      return `${where} exceeded its time limit (${s.timeLimit ?? time ?? '?'}) and was killed`;
    case 'CANCELLED':
      return `${where} was cancelled (scancel, or an administrator)`;
    case 'PREEMPTED':
      return `${where} was preempted by a higher-priority job and not requeued`;
    case 'NODE_FAIL':
      return `${where} failed: its node failed`;
    case 'OUT_OF_MEMORY':
      return `${where} ran out of memory (raise \`mem\`)`;
    case 'BOOT_FAIL':
      return `${where} failed: its node did not boot`;
    case 'DEADLINE':
      return `${where} missed its deadline`;
    default:
      return `${where} failed (${s.state}${s.exitCode ? `, exit code ${s.exitCode}` : ''}${s.reason && s.reason !== 'None' ? `, ${s.reason}` : ''})`;
  }
}
