// `pipe exec JOB.json` (internal): runs one stage on this machine for a runner elsewhere,
// answering in JSON lines on stdout (runner/hosts/job.ts). The runner that sent the job owns
// caching and commits; this side only fills the job's outDir, then marks it done.
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Progress, Stage, StageResult } from '../types.js';
import { StageError } from '../types.js';
import { Cache } from '../cache.js';
import { encodeLine, type Job, type JobLine } from '../hosts/job.js';
import { describeError } from '../outcome.js';
import { EXIT } from '../errors.js';
import { devicesUsed } from '../device.js';
import { readSecretsLine } from '../secrets.js';

const say = (line: JobLine): void => {
  process.stdout.write(encodeLine(line));
};

export const DONE_FILE = 'done.json';

/** `stages`: the stage types this pipe has (the CLI hands in the built-in ones). */
export async function execCommand(jobFile: string, stages: ReadonlyMap<string, Stage<any>>): Promise<number> {
  const job = JSON.parse(await readFile(jobFile, 'utf8')) as Job;
  const stage = stages.get(job.uses);
  if (!stage) {
    say({ t: 'error', message: `this host's pipe has no stage '${job.uses}' (update pipe on the host)`, expected: true });
    return EXIT.failed;
  }
  // Secrets first, from stdin, into this process's environment (the stage's: this process runs
  // nothing else); a job without them reads nothing.
  if (job.secrets?.length) {
    try {
      Object.assign(process.env, await readSecretsLine(process.stdin, job.secrets));
    } catch (e) {
      say({ t: 'error', message: describeError(e), expected: true });
      return EXIT.failed;
    }
  }
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => controller.abort());
  const cache = new Cache(job.cacheRoot);
  await cache.init();
  await rm(job.outDir, { recursive: true, force: true });
  await mkdir(job.outDir, { recursive: true });
  await mkdir(job.workDir, { recursive: true });
  let progressIds = 0;
  const progress = (label: string, total?: number, resumed = 0): Progress => {
    const id = ++progressIds;
    const state = { done: resumed, total, status: undefined as string | undefined };
    let last = 0;
    const send = (end = false): void => {
      const now = Date.now();
      if (!end && now - last < 500) return;
      last = now;
      say({
        t: 'progress',
        id,
        label,
        done: state.done,
        ...(resumed ? { resumed } : {}),
        ...(state.total !== undefined ? { total: state.total } : {}),
        ...(state.status ? { status: state.status } : {}),
        ...(end ? { end } : {}),
      });
    };
    return {
      tick: (n = 1, status) => {
        state.done += n;
        if (status !== undefined) state.status = status;
        send();
      },
      update: (done, status) => {
        state.done = done;
        if (status !== undefined) state.status = status;
        send();
      },
      setTotal: (t) => {
        state.total = t;
      },
      done: (status) => {
        if (status !== undefined) state.status = status;
        send(true);
      },
    };
  };
  try {
    const result: StageResult | void = await stage.run({
      params: job.params,
      inputs: job.inputs,
      stageId: job.stageId,
      pipelineName: job.pipelineName,
      pipelineDir: job.pipelineDir,
      outDir: job.outDir,
      workDir: job.workDir,
      log: {
        info: (msg) => say({ t: 'log', level: 'info', msg }),
        warn: (msg) => say({ t: 'log', level: 'warn', msg }),
        debug: (msg) => say({ t: 'log', level: 'debug', msg }),
      },
      progress,
      signal: controller.signal,
      derived: (name, key, build) => cache.derived(name, key, build, controller.signal),
      lineage: [],
      runId: job.runId,
    });
    if (controller.signal.aborted) throw new StageError('interrupted');
    const devices = devicesUsed();
    const final: StageResult = devices.length ? { ...result, meta: { ...result?.meta, device: devices.join(', ') } } : (result ?? {});
    await writeFile(path.join(path.dirname(job.outDir), DONE_FILE), JSON.stringify(final));
    say({ t: 'result', result: final });
    return EXIT.ok;
  } catch (e) {
    say({ t: 'error', message: describeError(e), expected: e instanceof StageError });
    return EXIT.failed;
  }
}
