// The Slurm client's pure parts, without a cluster: reading `scontrol show job -o`, what each
// state says, the sbatch command line, the job comment round trip, squeue's elapsed time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endedWhy, isFinal, parseJobState, pendingWhy } from '../runner/hosts/slurm/state.js';
import { jobComment, jobName, parseComment, sbatchCommand } from '../runner/hosts/slurm/request.js';
import { elapsedMs } from '../runner/hosts/slurm/queue.js';

const LINE =
  'JobId=42 JobName=pipe-47b3fd0a1a7bff91 UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=1 Nice=0 Account=(null) QOS=(null) ' +
  'JobState=TIMEOUT Reason=TimeLimit Dependency=(null) Requeue=1 Restarts=2 BatchFlag=1 Reboot=0 ExitCode=0:15 RunTime=00:00:31 TimeLimit=00:01:00 ' +
  'SubmitTime=2026-12-07T19:40:48 EligibleTime=2026-12-07T19:40:48 StartTime=2026-12-07T19:40:49 EndTime=2026-12-07T19:41:20 ' +
  'Partition=debug AllocNode:Sid=vm:1 NodeList=node7 BatchHost=node7 Comment=pipe:p:train:abc:47b3 WorkDir=/tmp/a b';

test('scontrol show job -o: the fields pipe reads, and a purged job is undefined', () => {
  const s = parseJobState(`${LINE}\n`)!;
  assert.deepEqual(
    {
      id: s.id,
      state: s.state,
      reason: s.reason,
      restarts: s.restarts,
      node: s.node,
      limit: s.timeLimit,
      exit: s.exitCode,
      partition: s.partition,
      start: s.startTime,
      end: s.endTime,
    },
    {
      id: '42',
      state: 'TIMEOUT',
      reason: 'TimeLimit',
      restarts: 2,
      node: 'node7',
      limit: '00:01:00',
      exit: '0:15',
      partition: 'debug',
      start: '2026-12-07T19:40:49',
      end: '2026-12-07T19:41:20',
    },
  );
  assert.equal(parseJobState('slurm_load_jobs error: Invalid job id specified\n'), undefined);
  const pending = parseJobState('JobId=5 JobState=PENDING Reason=Resources NodeList=(null) StartTime=Unknown EndTime=Unknown')!;
  assert.equal(pending.node, undefined);
  assert.equal(pending.startTime, undefined);
});

test('each state says what happened, with the job id', () => {
  const s = parseJobState(LINE)!;
  assert.equal(endedWhy(s, '1'), 'Slurm job 42 on node7 exceeded its time limit (00:01:00) and was killed');
  assert.equal(endedWhy({ ...s, state: 'CANCELLED' }, undefined), 'Slurm job 42 on node7 was cancelled (scancel, or an administrator)');
  assert.equal(endedWhy({ ...s, state: 'OUT_OF_MEMORY' }, undefined), 'Slurm job 42 on node7 ran out of memory (raise `mem`)');
  assert.equal(
    endedWhy({ ...s, state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '1:0' }, undefined),
    'Slurm job 42 on node7 failed (FAILED, exit code 1:0, NonZeroExitCode)',
  );
  assert.equal(endedWhy({ ...s, state: 'COMPLETED' }, undefined), undefined);
  // Requeued, and the second attempt's script never wrote its first line: Slurm failed it, not the stage.
  assert.equal(
    endedWhy({ ...s, state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '1:0', restarts: 1 }, undefined, 0),
    "Slurm job 42 on node7 failed before its script started (attempt 2, after 1 requeue; exit code 1:0): see slurmd's log on node7",
  );
  assert.equal(
    endedWhy({ ...s, state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '1:0', restarts: 1 }, undefined, 1),
    'Slurm job 42 on node7 failed (FAILED, exit code 1:0, NonZeroExitCode)',
  );
  assert.equal(pendingWhy('Resources'), 'waiting for free resources (Resources)');
  assert.equal(pendingWhy('AssocMaxJobsLimit'), 'pending (AssocMaxJobsLimit)');
  assert.ok(isFinal('TIMEOUT') && isFinal('PREEMPTED') && !isFinal('PENDING') && !isFinal('COMPLETING') && !isFinal('REQUEUED'));
});

test('the sbatch command: what the job asks for, its name and comment from the key, quoted for the shell', () => {
  const key = '47b3fd0a1a7bff91b97e8b123b3200db3f33bdb85ab4ddaebaeec3c07420c884';
  const comment = jobComment({ pipeline: 'my pipe', stage: 'train', cache: 'c0ffee', key });
  assert.equal(comment, `pipe:my_pipe:train:c0ffee:${key}`);
  assert.deepEqual(parseComment(comment), { pipeline: 'my_pipe', stage: 'train', cache: 'c0ffee', key });
  assert.equal(parseComment('someone else'), undefined);
  assert.equal(jobName(key), 'pipe-47b3fd0a1a7bff91');
  const cmd = sbatchCommand(
    { partition: 'gpu', gres: 'gpu:1', cpus: 4, mem: '16G', time: '01:00:00', account: 'lab', qos: 'high', sbatchArgs: ["--constraint=a100's"] },
    { name: jobName(key), comment, logFile: '/w/jobs/k/job.log', chdir: '/w/projects/p', script: '/w/jobs/k/job.sh' },
  );
  assert.equal(
    cmd,
    `'sbatch' '--parsable' '--job-name=pipe-47b3fd0a1a7bff91' '--comment=${comment}' '--output=/w/jobs/k/job.log' '--open-mode=append' '--chdir=/w/projects/p' ` +
      `'--partition=gpu' '--gres=gpu:1' '--cpus-per-task=4' '--mem=16G' '--time=01:00:00' '--account=lab' '--qos=high' '--constraint=a100'\\''s' '/w/jobs/k/job.sh'`,
  );
});

test("squeue's elapsed time", () => {
  assert.equal(elapsedMs('0:05'), 5_000);
  assert.equal(elapsedMs('1:02:03'), 3_723_000);
  assert.equal(elapsedMs('2-00:00:01'), 172_801_000);
  assert.equal(elapsedMs('INVALID'), undefined);
});
