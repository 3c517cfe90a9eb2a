// Running one stage on a remote host (`runs_on:` a provision stage whose host is not this
// machine). The runner keeps owning the cache: it syncs the project and the input artifacts
// (by content hash, so nothing is sent twice), runs `pipe exec` there, streams its log back,
// and brings the output into a local temp dir that it commits like any artifact.
import { mkdtemp, writeFile, rm, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Artifact, Logger, Progress, StageResult } from '../types.js';
import { StageError } from '../types.js';
import { decodeLine, type Job } from './job.js';
import { rsyncDown, rsyncUp, shq, sshRun, type SshTarget } from './ssh.js';
import { hashOf } from '../canonical.js';
import { sparseOf } from '../sparse.js';

/** What the runner needs from a host artifact's host.json (written by `provision`). */
export interface HostPlacement {
  readonly provider: string;
  readonly address: string;
  readonly sshUser?: string;
  readonly sshPort?: number;
  readonly sshKey?: string;
  readonly instanceId?: string;
  /** Where pipe keeps its files on the host (relative to the remote home). */
  readonly workspace?: string;
  /** An existing pipe installation on the host; else pipe is synced and installed there once. */
  readonly pipePath?: string;
}

export async function readPlacement(hostArtifactDir: string): Promise<HostPlacement | undefined> {
  try {
    return JSON.parse(await readFile(path.join(hostArtifactDir, 'host.json'), 'utf8')) as HostPlacement;
  } catch {
    return undefined;
  }
}

export function isRemote(p: HostPlacement | undefined): p is HostPlacement {
  return p !== undefined && p.provider !== 'local';
}

export interface RemoteRunOptions {
  readonly placement: HostPlacement;
  readonly knownHosts: string;
  readonly pipelineName: string;
  readonly pipelineDir: string;
  readonly stageId: string;
  readonly uses: string;
  readonly params: Record<string, unknown>;
  readonly inputs: Readonly<Record<string, Artifact>>;
  readonly key: string;
  readonly runId: string;
  /** Local directory the output lands in (the runner's temp data dir). */
  readonly outDir: string;
  readonly log: Logger;
  progress(label: string, total?: number, resumed?: number): Progress;
  readonly signal: AbortSignal;
}

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export async function runOnHost(o: RemoteRunOptions): Promise<StageResult> {
  const p = o.placement;
  const where = p.instanceId ? `${p.address} (${p.instanceId})` : p.address;
  const target: SshTarget = { address: p.address, user: p.sshUser ?? 'ubuntu', port: p.sshPort ?? 22, ...(p.sshKey ? { key: p.sshKey } : {}), knownHosts: o.knownHosts };
  const lost = (doing: string): StageError =>
    new StageError(`connection to host ${where} lost ${doing}`, 're-run: what already reached the host is not sent again');

  let home = '';
  const hello = await sshRun(target, 'echo "$HOME"', { signal: o.signal, onLine: (l) => (home ||= l.trim()) });
  if (hello.exitCode !== 0 || !home) {
    throw new StageError(`cannot reach host ${where} over ssh: ${hello.stderr.trim().split('\n').pop() || `exit ${hello.exitCode}`}`);
  }
  const root = path.posix.isAbsolute(p.workspace ?? '') ? p.workspace! : path.posix.join(home, p.workspace ?? '.pipe-remote');
  const sync = async (doing: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      if (o.signal.aborted) throw new StageError('interrupted');
      const msg = (e as Error).message;
      throw /lost/.test(msg) ? lost(doing) : new StageError(`${doing} failed: ${msg}`);
    }
  };

  // pipe itself: an installation named by the host, or this package synced and installed once.
  let bin: string;
  if (p.pipePath) bin = path.posix.join(p.pipePath, 'bin/pipe.js');
  else {
    const toolDir = path.posix.join(root, 'tool');
    o.log.info(`syncing pipe to ${where}:${toolDir}`);
    await sync('syncing pipe to the host', () => rsyncUp(target, PACKAGE_ROOT, toolDir, { signal: o.signal, delete: true, exclude: ['node_modules', '.pipe', '.git', 'test-artifacts'] }));
    const lock = hashOf(await readFile(path.join(PACKAGE_ROOT, 'package-lock.json'), 'utf8')).slice(0, 16);
    const install = `cd ${shq(toolDir)} && if [ ! -f node_modules/.pipe-installed-${lock} ]; then npm ci --omit=dev --no-audit --no-fund >&2 && touch node_modules/.pipe-installed-${lock}; fi`;
    const r = await sshRun(target, install, { signal: o.signal });
    if (r.exitCode === 255) throw lost('installing pipe');
    if (r.exitCode !== 0) throw new StageError(`installing pipe on ${where} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    bin = path.posix.join(toolDir, 'bin/pipe.js');
  }

  // The project (relative paths in params) and the inputs, each input once per content hash.
  const projectDir = path.posix.join(root, 'projects', o.pipelineName);
  await sync('syncing the project', () => rsyncUp(target, o.pipelineDir, projectDir, { signal: o.signal, delete: true, exclude: ['.pipe', 'node_modules', '.git'] }));
  const remoteInputs: Record<string, Artifact> = {};
  for (const [port, a] of Object.entries(o.inputs)) {
    // A partial pull (sparse entry) holds only some files: never the host's whole copy of its content.
    const sparse = sparseOf(a);
    const dir = path.posix.join(root, 'store', sparse ? `${a.contentHash}-partial-${hashOf(sparse.present).slice(0, 12)}` : a.contentHash);
    const have = await sshRun(target, `test -f ${shq(`${dir}.complete`)}`, { signal: o.signal });
    if (have.exitCode === 255) throw lost('checking inputs');
    if (have.exitCode !== 0) {
      o.log.info(`sending input ${port} (${a.contentHash.slice(0, 12)})`);
      await sync(`sending input ${port}`, () => rsyncUp(target, a.dir, dir, { signal: o.signal, delete: true }));
      await sshRun(target, `touch ${shq(`${dir}.complete`)}`, { signal: o.signal });
    }
    remoteInputs[port] = { ...a, dir };
  }

  // The job; a job already done there (a re-run after a lost connection) is only fetched.
  const jobDir = path.posix.join(root, 'jobs', o.key);
  const job: Job = {
    uses: o.uses,
    stageId: o.stageId,
    pipelineName: o.pipelineName,
    pipelineDir: projectDir,
    params: o.params,
    inputs: remoteInputs,
    outDir: path.posix.join(jobDir, 'out'),
    workDir: path.posix.join(jobDir, 'work'),
    cacheRoot: path.posix.join(root, 'cache'),
    runId: o.runId,
  };
  let result: StageResult | undefined;
  const done = await sshRun(target, `cat ${shq(path.posix.join(jobDir, 'done.json'))} 2>/dev/null`, { signal: o.signal, onLine: (l) => (result ??= tryJson(l)) });
  if (done.exitCode === 255) throw lost('checking for earlier work');
  if (result) o.log.info('the host already finished this job: fetching its output');
  else {
    const local = await mkdtemp(path.join(os.tmpdir(), 'pipe-job-'));
    try {
      await writeFile(path.join(local, 'job.json'), JSON.stringify(job));
      await sync('sending the job', () => rsyncUp(target, local, jobDir, { signal: o.signal }));
    } finally {
      await rm(local, { recursive: true, force: true });
    }
    o.log.info(`running on ${where}`);
    let failure: string | undefined;
    const bars = new Map<number, Progress>();
    const run = await sshRun(target, `cd ${shq(projectDir)} && node ${shq(bin)} exec ${shq(path.posix.join(jobDir, 'job.json'))}`, {
      signal: o.signal,
      onLine: (text) => {
        const line = decodeLine(text);
        if (!line) return o.log.info(text);
        switch (line.t) {
          case 'log':
            return o.log[line.level](line.msg);
          case 'progress': {
            let bar = bars.get(line.id);
            if (!bar) bars.set(line.id, (bar = o.progress(line.label, line.total, line.resumed)));
            if (line.total !== undefined) bar.setTotal(line.total);
            if (line.end) bar.done(line.status);
            else bar.update(line.done, line.status);
            return;
          }
          case 'result':
            result = line.result;
            return;
          case 'error':
            failure = line.message;
            return;
          default: {
            const never: never = line;
            return never;
          }
        }
      },
    });
    if (o.signal.aborted) throw new StageError('interrupted');
    if (failure) throw new StageError(`${failure} (on ${where})`);
    if (run.exitCode === 255 || !result) throw lost('while the stage ran');
  }
  await sync('fetching the output', () => rsyncDown(target, job.outDir, o.outDir, { signal: o.signal }));
  await sshRun(target, `rm -rf ${shq(jobDir)}`, { signal: o.signal });
  return result ?? {};
}

function tryJson(text: string): StageResult | undefined {
  try {
    return JSON.parse(text) as StageResult;
  } catch {
    return undefined;
  }
}
