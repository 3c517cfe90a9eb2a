// One stage as one Slurm batch job: submitted with sbatch from the submit host (here, or the
// login node over ssh), then followed until it ends: its state from `scontrol show job` (pending
// with the reason, running on a node, requeued, and how it ended), its log (the `pipe exec`
// JSON lines it writes to a file on the shared filesystem) read on from the last byte seen.
// Ctrl-C cancels it (scancel); a lost connection does not: a re-run finds the job in the queue
// by its name and comment (the stage's key) and waits for it instead of submitting another.
import path from 'node:path';
import { StageError, type Logger } from '../../types.js';
import { shq, type SshTarget } from '../ssh.js';
import { capture, captureText } from './shell.js';
import { jobComment, jobName, parseComment, sbatchCommand, type SlurmCluster } from './request.js';
import { endedWhy, isFinal, parseJobState, pendingWhy, type JobState } from './state.js';

export interface SlurmJobOptions {
  readonly target: SshTarget;
  readonly cluster: SlurmCluster;
  readonly key: string;
  readonly pipelineName: string;
  readonly stageId: string;
  /** The cache's id (runner/hosts/cache-id.ts), so `pipe down` cancels only this cache's jobs. */
  readonly cacheId: string;
  readonly jobDir: string;
  readonly projectDir: string;
  /** The shell command the job runs (`pipe exec` with its environment). */
  readonly command: string;
  /** Puts job.json in jobDir (only when a new job is submitted). */
  sendJob(): Promise<void>;
  /** Each line the job writes (JSON lines of `pipe exec`, or plain text from Slurm or the shell). */
  onLine(text: string): void;
  /**
   * An attempt of the job began (0 the first; 1 after its first requeue, ...): what the caller
   * kept of an earlier attempt's lines (its error, its result) is not this attempt's.
   */
  onAttempt(attempt: number): void;
  /** The error `pipe exec` reported in the job's log, if any (a better message than FAILED). */
  failure(): string | undefined;
  readonly log: Logger;
  readonly signal: AbortSignal;
  lost(doing: string): StageError;
}

/** What the run record and meta.json keep of the job. */
export interface SlurmJobFacts {
  readonly jobId: string;
  readonly cluster: string;
  readonly partition?: string;
  readonly node?: string;
  readonly state: string;
  readonly restarts: number;
  /** Seconds from submission to start, and from start to end (of the last attempt). */
  readonly queuedS?: number;
  readonly ranS?: number;
  readonly startTime?: string;
  readonly endTime?: string;
}

const LOG_MARK = '__pipe_slurm_log__';
/**
 * The job script's first line in the log, with SLURM_RESTART_COUNT: the log is appended to across
 * requeues (--open-mode=append), and this is where one attempt's lines end and the next begin.
 */
const ATTEMPT_MARK = '__pipe_slurm_attempt__';
/** How often the job's state and log are read (one scontrol call per job per interval). */
export const POLL_MS = 1000;

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * A job of this key and cache still queued or running (a re-run after a lost connection), if
 * any. Another cache's job of the same key runs from its own job folder (remote.ts), whose
 * script path (squeue's %o) is not this run's `script`: never waited for, even where the two
 * caches have one path (and so one cache id) on two machines.
 */
export async function findQueuedJob(t: SshTarget, key: string, cacheId: string, script: string, signal?: AbortSignal): Promise<string | undefined> {
  const r = await captureText(t, `squeue --me -h --name=${shq(jobName(key))} -o '%i|%T|%k|%o'`, signal);
  for (const line of r.out.split('\n')) {
    const [id, state, comment, ...command] = line.trim().split('|');
    const tag = parseComment(comment ?? '');
    if (id && state && !isFinal(state) && tag?.key === key && tag.cache === cacheId && command.join('|') === script) return id;
  }
  return undefined;
}

/** Submit (or find) the stage's job and follow it to its end. Throws StageError unless it completed. */
export async function runSlurmJob(o: SlurmJobOptions): Promise<SlurmJobFacts> {
  const logFile = path.posix.join(o.jobDir, 'job.log');
  let id = await findQueuedJob(o.target, o.key, o.cacheId, scriptOf(o.jobDir), o.signal);
  if (id) o.log.info(`Slurm job ${id} of an earlier run is still queued or running for this key: waiting for it`);
  else id = await submit(o, logFile);
  return follow(o, id, logFile);
}

const scriptOf = (jobDir: string): string => path.posix.join(jobDir, 'job.sh');

async function submit(o: SlurmJobOptions, logFile: string): Promise<string> {
  await o.sendJob();
  const script = scriptOf(o.jobDir);
  const body = [
    '#!/bin/bash',
    `# pipe: ${o.pipelineName}/${o.stageId} (key ${o.key})`,
    `echo "${ATTEMPT_MARK} \${SLURM_RESTART_COUNT:-0}"`,
    `cd ${shq(o.projectDir)} || exit 1`,
    o.command,
    '',
  ].join('\n');
  const sbatch = sbatchCommand(o.cluster, {
    name: jobName(o.key),
    comment: jobComment({ pipeline: o.pipelineName, stage: o.stageId, cache: o.cacheId, key: o.key }),
    logFile,
    chdir: o.projectDir,
    script,
  });
  const r = await captureText(
    o.target,
    `mkdir -p ${shq(o.jobDir)} && rm -f ${shq(logFile)} && printf '%s' ${shq(body)} > ${shq(script)} && ${sbatch}`,
    o.signal,
  );
  if (o.signal.aborted) throw new StageError('interrupted');
  if (r.exitCode === 255 && !o.target.local) throw o.lost('submitting the Slurm job');
  const id = /^(\d+)/.exec(r.out.trim())?.[1];
  if (!r.ok || !id) {
    const why = r.err.split('\n').filter(Boolean).pop() ?? `exit ${r.exitCode}`;
    throw new StageError(
      `sbatch refused the job on cluster ${o.cluster.cluster}: ${why.replace(/^sbatch: error: /, '')}`,
      "check the provision stage's partition, gres, cpus, mem, time, account, qos and sbatch_args against `sinfo` and your account",
    );
  }
  const asked = [
    o.cluster.partition && `partition ${o.cluster.partition}`,
    o.cluster.gres && `gres ${o.cluster.gres}`,
    o.cluster.time && `time ${o.cluster.time}`,
  ]
    .filter(Boolean)
    .join(', ');
  o.log.info(`submitted Slurm job ${id} to cluster ${o.cluster.cluster}${asked ? ` (${asked})` : ''}`);
  return id;
}

async function follow(o: SlurmJobOptions, id: string, logFile: string): Promise<SlurmJobFacts> {
  let offset = 0;
  let said = '';
  let restarts = -1;
  let last: JobState | undefined;
  /** The attempt whose lines the log has reached (-1: its script has not started yet). */
  let attempt = -1;
  let ranSaid = false;
  const stream = (bytes: Buffer, final: boolean): void => {
    const end = final ? bytes.length : bytes.lastIndexOf(0x0a) + 1;
    if (end <= 0) return;
    offset += end;
    for (const line of bytes.subarray(0, end).toString('utf8').split('\n')) {
      const started = attemptOf(line);
      if (started !== undefined) {
        attempt = started;
        o.onAttempt(started);
      } else if (line) o.onLine(line);
    }
  };
  for (;;) {
    if (o.signal.aborted) return cancel(o, id);
    const r = await capture(
      o.target,
      `scontrol show job -o ${id} 2>&1; echo; echo ${LOG_MARK}; tail -c +${offset + 1} ${shq(logFile)} 2>/dev/null; true`,
      o.signal,
    );
    if (o.signal.aborted) return cancel(o, id);
    if (r.exitCode === 255 && !o.target.local) throw o.lost(`while Slurm job ${id} ran (it goes on; a re-run waits for it)`);
    const mark = r.stdout.indexOf(`\n${LOG_MARK}\n`);
    const stateText = (mark >= 0 ? r.stdout.subarray(0, mark) : r.stdout).toString('utf8');
    const state = parseJobState(stateText);
    const final = !state || isFinal(state.state);
    if (mark >= 0) stream(r.stdout.subarray(mark + LOG_MARK.length + 2), final);
    if (!state) {
      // Purged from the controller (MinJobAge) before we looked: its done.json says whether it finished.
      const done = await captureText(o.target, `test -f ${shq(path.posix.join(o.jobDir, 'done.json'))}`, o.signal);
      if (done.ok && last) return facts(o, { ...last, state: 'COMPLETED' });
      throw new StageError(
        `Slurm job ${id} is no longer known to the controller (${stateText.trim().split('\n')[0] || 'no answer'}) and left no result`,
        're-run to submit it again',
      );
    }
    last = state;
    if (state.restarts > restarts) {
      if (restarts >= 0) o.log.warn(`Slurm job ${id} was requeued (restart ${state.restarts}): it runs again from the start`);
      restarts = state.restarts;
    }
    const now = state.state === 'PENDING' ? `PENDING ${state.reason}` : state.state;
    if (now !== said) {
      said = now;
      if (state.state === 'PENDING') o.log.info(`Slurm job ${id} pending: ${pendingWhy(state.reason)}`);
      else if (state.state === 'RUNNING') {
        o.log.info(`Slurm job ${id} running on ${state.node ?? 'a node'}`);
        ranSaid = true;
      } else if (!final) o.log.debug(`Slurm job ${id}: ${state.state}`);
    }
    if (final) {
      // A short job can start and end between two polls: where it ran is still worth saying.
      if (!ranSaid && state.node && state.startTime) o.log.info(`Slurm job ${id} ran on ${state.node}`);
      const why = endedWhy(state, o.cluster.time === undefined ? undefined : String(o.cluster.time), attempt);
      // An earlier attempt's error is not this attempt's: only the attempt that ran last speaks.
      const failure = attempt === state.restarts ? o.failure() : undefined;
      if (why && state.state === 'FAILED' && failure) throw new StageError(`${failure} (Slurm job ${id}${state.node ? ` on ${state.node}` : ''})`);
      if (why) throw new StageError(why);
      return facts(o, state);
    }
    await sleep(POLL_MS, o.signal);
  }
}

function attemptOf(line: string): number | undefined {
  if (!line.startsWith(`${ATTEMPT_MARK} `)) return undefined;
  const n = Number(line.slice(ATTEMPT_MARK.length + 1));
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

async function cancel(o: SlurmJobOptions, id: string): Promise<never> {
  const r = await captureText(o.target, `scancel ${shq(id)}`);
  o.log.warn(
    r.ok ? `cancelled Slurm job ${id} (scancel)` : `could not cancel Slurm job ${id}: ${r.err || `exit ${r.exitCode}`}; cancel it yourself: scancel ${id}`,
  );
  throw new StageError('interrupted');
}

function seconds(from: string | undefined, to: string | undefined): number | undefined {
  if (!from || !to) return undefined;
  const d = (new Date(to).getTime() - new Date(from).getTime()) / 1000;
  return Number.isFinite(d) && d >= 0 ? d : undefined;
}

function facts(o: SlurmJobOptions, s: JobState): SlurmJobFacts {
  const queuedS = seconds(s.submitTime, s.startTime);
  const ranS = seconds(s.startTime, s.endTime);
  return {
    jobId: s.id,
    cluster: o.cluster.cluster,
    ...(s.partition ? { partition: s.partition } : {}),
    ...(s.node ? { node: s.node } : {}),
    state: s.state,
    restarts: s.restarts,
    ...(queuedS !== undefined ? { queuedS } : {}),
    ...(ranS !== undefined ? { ranS } : {}),
    ...(s.startTime ? { startTime: s.startTime } : {}),
    ...(s.endTime ? { endTime: s.endTime } : {}),
  };
}
